package v1alpha1

import (
	"encoding/json"
	"reflect"
	"strconv"
	"time"
)

// Duration is written as Go and Flagger write durations: "30s", "1m", "1h30m".
type Duration struct {
	time.Duration
}

// D makes a Duration.
func D(d time.Duration) *Duration { return &Duration{d} }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reports a bad value as a json.UnmarshalTypeError, so that the decoder
// names the field it is in.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeOf(d).Elem()}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return &json.UnmarshalTypeError{Value: strconv.Quote(s), Type: reflect.TypeOf(d).Elem()}
	}
	d.Duration = v
	return nil
}
