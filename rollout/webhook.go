package rollout

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/weir-mesh/weir/api/v1alpha1"
)

// defaultHookTimeout applies to webhooks without a timeout (Flagger's default).
const defaultHookTimeout = 10 * time.Second

// hookPayload is the JSON body of every webhook call, as Flagger sends it.
type hookPayload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Phase     v1alpha1.Phase    `json:"phase"`
	Canary    string            `json:"canary,omitempty"`
	Stable    string            `json:"stable,omitempty"`
	Weight    int32             `json:"canaryWeight"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// callHook POSTs the payload; any status but 2xx is an error carrying the answer.
func callHook(ctx context.Context, client *http.Client, h v1alpha1.Webhook, p hookPayload) error {
	timeout := defaultHookTimeout
	if h.Timeout != nil {
		timeout = h.Timeout.Duration
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	md := map[string]string{}
	for k, v := range h.Metadata {
		md[k] = v
	}
	for k, v := range p.Metadata {
		md[k] = v
	}
	p.Metadata = md
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		if len(bytes.TrimSpace(msg)) > 0 {
			return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
		}
		return fmt.Errorf("%s", resp.Status)
	}
	return nil
}
