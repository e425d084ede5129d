package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/weir-mesh/weir/rollout"
)

const rolloutUsage = `usage: weir rollout COMMAND [NAME] [flags]

  list                     every rollout, one line each
  get NAME [-watch]        one rollout: phase, step, weights, metrics (-watch: live)
  promote NAME             send all traffic to the canary now
  abort NAME               roll back now: all traffic to the stable subset
  pause NAME               hold at the current step
  resume NAME              continue (also ends a pause step without a duration)
  set-weight NAME PERCENT  hold the canary at PERCENT (resume returns to the plan)

NAME is NAMESPACE/NAME or NAME (in -n, default "default").
`

// rolloutCmd talks to a running weir's admin API.
func rolloutCmd(args []string) error {
	fs := flag.NewFlagSet("weir rollout", flag.ContinueOnError)
	adminAddr := fs.String("admin-address", "127.0.0.1:18001", "address of weir's admin API")
	namespace := fs.String("n", "default", "namespace of NAME when it has none")
	watch := fs.Bool("watch", false, "get: redraw every second until interrupted")
	output := fs.String("o", "text", "text or json")
	fs.Usage = func() { fmt.Fprint(fs.Output(), rolloutUsage); fs.PrintDefaults() }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return fmt.Errorf("want a command")
	}
	api := adminClient{base: "http://" + *adminAddr, http: http.Client{Timeout: 10 * time.Second}}
	cmd, rest := pos[0], pos[1:]
	if cmd == "list" {
		var body struct{ Rollouts []rollout.Status }
		if err := api.get("/rollouts", &body); err != nil {
			return err
		}
		if *output == "json" {
			return printJSON(body.Rollouts)
		}
		rollout.RenderList(os.Stdout, body.Rollouts)
		return nil
	}
	if len(rest) == 0 {
		return fmt.Errorf("%s needs a rollout name", cmd)
	}
	ns, name := *namespace, rest[0]
	if before, after, ok := strings.Cut(name, "/"); ok {
		ns, name = before, after
	}
	path := "/rollouts/" + url.PathEscape(ns) + "/" + url.PathEscape(name)
	switch cmd {
	case "get":
		return getRollout(api, path, *output, *watch)
	case "promote", "abort", "pause", "resume":
		return api.post(path + "/" + cmd)
	case "set-weight":
		if len(rest) != 2 {
			return fmt.Errorf("set-weight needs a rollout name and a percentage")
		}
		return api.post(path + "/set-weight?weight=" + url.QueryEscape(rest[1]))
	}
	fs.Usage()
	return fmt.Errorf("unknown rollout command %q", cmd)
}

func getRollout(api adminClient, path, output string, watch bool) error {
	var s rollout.Status
	if !watch {
		if err := api.get(path, &s); err != nil {
			return err
		}
		if output == "json" {
			return printJSON(s)
		}
		rollout.Render(os.Stdout, s, time.Now())
		return nil
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	defer signal.Stop(stop)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		var buf bytes.Buffer
		if err := api.get(path, &s); err != nil {
			fmt.Fprintf(&buf, "%s: %v\n", time.Now().Format(time.TimeOnly), err)
		} else {
			rollout.Render(&buf, s, time.Now())
		}
		// Clear the screen and draw the whole view at once, so it does not flicker.
		fmt.Printf("\033[H\033[2J%s\n(%s; Ctrl-C to stop)\n", buf.String(), time.Now().Format(time.TimeOnly))
		select {
		case <-stop:
			return nil
		case <-t.C:
		}
	}
}

type adminClient struct {
	base string
	http http.Client
}

func (a adminClient) get(path string, out any) error {
	resp, err := a.http.Get(a.base + path)
	if err != nil {
		return fmt.Errorf("ask weir at %s: %w", a.base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("weir: %s", strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, out)
}

func (a adminClient) post(path string) error {
	resp, err := a.http.Post(a.base+path, "", nil)
	if err != nil {
		return fmt.Errorf("ask weir at %s: %w", a.base, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("weir: %s", strings.TrimSpace(string(body)))
	}
	fmt.Println("ok:", strings.TrimPrefix(path[strings.LastIndex(path, "/")+1:], ""))
	return nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
