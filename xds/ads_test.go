package xds

import (
	"runtime"
	"testing"
)

func TestStreamsWithTheSameNamesShareOneSet(t *testing.T) {
	a, b := &subscription{legacyWildcard: true}, &subscription{legacyWildcard: true}
	a.set([]string{"x", "y", "z"})
	b.set([]string{"z", "x", "y"})
	if a.names != b.names {
		t.Fatal("the same names in another order got a second set")
	}
	c := &subscription{legacyWildcard: true}
	c.set([]string{"x", "y"})
	if c.names == a.names || len(c.SubscribedResources()) != 2 {
		t.Fatalf("different names share a set: %v", c.SubscribedResources())
	}
	runtime.KeepAlive(b)
}

func TestSubscriptionFollowsTheWildcardRules(t *testing.T) {
	s := &subscription{legacyWildcard: true}
	s.set(nil)
	if !s.IsWildcard() {
		t.Fatal("an empty first request is a wildcard")
	}
	s.set([]string{"a"})
	if s.IsWildcard() || len(s.SubscribedResources()) != 1 {
		t.Fatal("naming a resource ends the legacy wildcard")
	}
	s.set(nil)
	if s.IsWildcard() || len(s.SubscribedResources()) != 0 {
		t.Fatal("after names, an empty request subscribes to nothing")
	}
	s.set([]string{"*", "a"})
	if !s.IsWildcard() {
		t.Fatal(`"*" is an explicit wildcard`)
	}
}

func TestDroppedNamesAreForgottenWithoutTouchingTheSharedMap(t *testing.T) {
	shared := map[string]string{"a": "v1", "b": "v1"}
	s := &subscription{legacyWildcard: true}
	s.set([]string{"a", "b"})
	s.returned = shared
	s.set([]string{"a"})
	if _, ok := s.ReturnedResources()["b"]; ok {
		t.Fatal("a name no longer subscribed is still recorded as sent")
	}
	if len(shared) != 2 {
		t.Fatal("the shared returned map was modified")
	}
}
