package main

import (
	"errors"
	"testing"
)

func TestFlagsRefuseWhatABenchmarkToolMustNotDo(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name        string
		args        []string
		notLoopback bool
		ok          bool
	}{
		{name: "defaults", args: []string{"--config-dir", dir}, ok: true},
		{name: "ipv6 loopback", args: []string{"--config-dir", dir, "--xds-address", "[::1]:0"}, ok: true},
		{name: "no config dir", args: nil},
		{name: "config dir missing", args: []string{"--config-dir", dir + "/missing"}},
		{name: "xds on all interfaces", args: []string{"--config-dir", dir, "--xds-address", ":18100"}, notLoopback: true},
		{name: "xds on a LAN address", args: []string{"--config-dir", dir, "--xds-address", "10.0.0.1:18100"}, notLoopback: true},
		{name: "xds on a host name", args: []string{"--config-dir", dir, "--xds-address", "example.com:18100"}, notLoopback: true},
		{name: "admin on all interfaces", args: []string{"--config-dir", dir, "--admin-address", "0.0.0.0:18101"}, notLoopback: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if o.configDir != dir || o.adminAddr != "127.0.0.1:18101" || o.logLevel != "info" {
					t.Errorf("options = %+v", o)
				}
				return
			}
			if err == nil {
				t.Fatalf("parseFlags(%q) accepted", tc.args)
			}
			if got := errors.Is(err, errNotLoopback); got != tc.notLoopback {
				t.Errorf("parseFlags(%q) = %v; want a not-loopback error: %v", tc.args, err, tc.notLoopback)
			}
		})
	}
}
