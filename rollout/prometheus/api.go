package prometheus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxBody bounds what is read of an answer: a query that returns one series is small, and
// a runaway one should fail rather than fill memory.
const maxBody = 8 << 20

// queryURL is the instant-query endpoint under address, keeping any path prefix
// (Prometheus behind a proxy at /prometheus, say).
func queryURL(address string) (*url.URL, error) {
	u, err := url.Parse(address)
	if err != nil {
		return nil, fmt.Errorf("prometheus.address %q: %w", address, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("prometheus.address %q: want http://host:port or https://host:port", address)
	}
	return u.JoinPath("api", "v1", "query"), nil
}

// outcome is a query's single value; noData when it had none (no series, or NaN).
type outcome struct {
	value  float64
	noData bool
}

// query evaluates expr at the instant at with GET /api/v1/query.
func (p *Provider) query(ctx context.Context, endpoint *url.URL, expr string, at time.Time) (outcome, error) {
	u := *endpoint
	u.RawQuery = url.Values{
		"query": {expr},
		"time":  {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return outcome{}, fmt.Errorf("query %q on %s: %w", expr, endpoint.Host, err)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		// The url.Error repeats the whole encoded query; the expression is said once.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return outcome{}, fmt.Errorf("query %q on %s: %w", expr, endpoint.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return outcome{}, fmt.Errorf("query %q on %s: read answer: %w", expr, endpoint.Host, err)
	}
	o, err := decode(resp.StatusCode, body)
	if err != nil {
		return outcome{}, fmt.Errorf("query %q on %s: %w", expr, endpoint.Host, err)
	}
	return o, nil
}

// apiResponse is the envelope of every Prometheus HTTP API answer.
type apiResponse struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// decode turns an instant query's answer into its single value.
func decode(status int, body []byte) (outcome, error) {
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Status == "" {
		return outcome{}, fmt.Errorf("HTTP %d, not a Prometheus API answer: %q", status, snippet(body))
	}
	if r.Status != "success" {
		return outcome{}, fmt.Errorf("prometheus says %s: %s", r.ErrorType, r.Error)
	}
	switch r.Data.ResultType {
	case "scalar":
		v, err := pointValue(r.Data.Result)
		if err != nil {
			return outcome{}, err
		}
		return valueOf(v), nil
	case "vector":
		var samples []struct {
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &samples); err != nil {
			return outcome{}, fmt.Errorf("vector result: %w", err)
		}
		switch len(samples) {
		case 0:
			return outcome{noData: true}, nil
		case 1:
			v, err := pointValue(samples[0].Value)
			if err != nil {
				return outcome{}, err
			}
			return valueOf(v), nil
		}
		return outcome{}, fmt.Errorf("%w: it returned %d", ErrManySeries, len(samples))
	}
	return outcome{}, fmt.Errorf("result type %q: want an instant vector or a scalar", r.Data.ResultType)
}

// valueOf treats NaN, what 0/0 gives when the window saw no request, as no data.
func valueOf(v float64) outcome {
	if math.IsNaN(v) {
		return outcome{noData: true}
	}
	return outcome{value: v}
}

// pointValue reads a [<unix time>, "<value>"] pair; Prometheus writes values as strings
// so that NaN and ±Inf survive JSON.
func pointValue(raw json.RawMessage) (float64, error) {
	var pair []any
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return 0, fmt.Errorf("sample %s: want [time, \"value\"]", snippet(raw))
	}
	s, ok := pair[1].(string)
	if !ok {
		return 0, fmt.Errorf("sample %s: value is not a string", snippet(raw))
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("sample value %q: %w", s, err)
	}
	return v, nil
}

// snippet is the start of body, enough to recognise a proxy's error page.
func snippet(body []byte) string {
	const n = 200
	if len(body) > n {
		return string(body[:n]) + "…"
	}
	return string(body)
}
