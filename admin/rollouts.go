package admin

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/weir-mesh/weir/rollout"
)

// Rollouts is the rollout controller as the admin API sees it.
type Rollouts interface {
	List() []rollout.Status
	Command(namespace, name string, cmd rollout.Command) error
}

// rolloutRoutes serves
//
//	GET  /rollouts                          every rollout
//	GET  /rollouts/{namespace}/{name}       one
//	POST /rollouts/{namespace}/{name}/{cmd} promote, abort, pause, resume, set-weight?weight=N
func rolloutRoutes(mux *http.ServeMux, ro Rollouts) {
	mux.HandleFunc("GET /rollouts", func(w http.ResponseWriter, _ *http.Request) {
		list := ro.List()
		if list == nil {
			list = []rollout.Status{}
		}
		writeJSON(w, map[string]any{"rollouts": list})
	})
	mux.HandleFunc("GET /rollouts/{namespace}/{name}", func(w http.ResponseWriter, r *http.Request) {
		for _, s := range ro.List() {
			if s.Namespace == r.PathValue("namespace") && s.Name == r.PathValue("name") {
				writeJSON(w, s)
				return
			}
		}
		http.Error(w, "no such rollout: "+r.PathValue("namespace")+"/"+r.PathValue("name"), http.StatusNotFound)
	})
	mux.HandleFunc("POST /rollouts/{namespace}/{name}/{cmd}", func(w http.ResponseWriter, r *http.Request) {
		cmd := rollout.Command{Kind: rollout.CommandKind(r.PathValue("cmd"))}
		switch cmd.Kind {
		case rollout.CmdPromote, rollout.CmdAbort, rollout.CmdPause, rollout.CmdResume:
		case rollout.CmdSetWeight:
			n, err := strconv.Atoi(r.URL.Query().Get("weight"))
			if err != nil || n < 0 || n > 100 {
				http.Error(w, "set-weight needs ?weight= between 0 and 100", http.StatusBadRequest)
				return
			}
			cmd.Weight = int32(n)
		default:
			http.Error(w, "unknown command "+strconv.Quote(string(cmd.Kind))+": promote, abort, pause, resume or set-weight", http.StatusBadRequest)
			return
		}
		err := ro.Command(r.PathValue("namespace"), r.PathValue("name"), cmd)
		switch {
		case errors.Is(err, rollout.ErrNotFound):
			http.Error(w, err.Error(), http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusAccepted)
			writeJSON(w, map[string]string{"accepted": string(cmd.Kind)})
		}
	})
}
