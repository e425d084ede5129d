package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// proxyConfig prints what weir serves one proxy, like `istioctl proxy-config`.
func proxyConfig(args []string) error {
	fs := flag.NewFlagSet("weir proxy-config", flag.ContinueOnError)
	adminAddr := fs.String("admin-address", "127.0.0.1:18001", "address of weir's admin API")
	output := fs.String("o", "table", "table or json")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: weir proxy-config clusters|endpoints|listeners|scopes|routes|all NODE_ID [-admin-address A] [-o table|json]")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		fs.Usage()
		return fmt.Errorf("want a type and a node id")
	}
	q := url.Values{"type": {pos[0]}, "node": {pos[1]}}
	if *output == "table" {
		q.Set("format", "table")
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + *adminAddr + "/debug/config?" + q.Encode())
	if err != nil {
		return fmt.Errorf("ask weir at %s: %w", *adminAddr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("weir at %s: %s", *adminAddr, body)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}

// parseInterleaved parses flags that may come before, between or after the positional
// arguments, and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	return pos, nil
}
