package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Store keeps rollout states across restarts.
type Store interface {
	Load() (map[string]State, error)
	Save(map[string]State) error
}

// FileStore keeps states in one JSON file, replaced atomically on every save (write to a
// temporary file in the same directory, then rename), so a crash never leaves half a file.
type FileStore struct{ Path string }

type stateFile struct {
	Rollouts map[string]State `json:"rollouts"`
}

func (f FileStore) Load() (map[string]State, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read rollout state: %w", err)
	}
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, fmt.Errorf("read rollout state %s: %w", f.Path, err)
	}
	if sf.Rollouts == nil {
		sf.Rollouts = map[string]State{}
	}
	return sf.Rollouts, nil
}

func (f FileStore) Save(states map[string]State) error {
	b, err := json.MarshalIndent(stateFile{Rollouts: states}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.Path), ".weir-state-*")
	if err != nil {
		return fmt.Errorf("save rollout state: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; cleans up after a failure
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save rollout state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save rollout state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save rollout state: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return fmt.Errorf("save rollout state: %w", err)
	}
	return nil
}

// MemoryStore keeps states in memory only (tests, and weir without a state file).
type MemoryStore struct {
	mu     sync.Mutex
	states map[string]State
}

func (m *MemoryStore) Load() (map[string]State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]State{}
	for k, v := range m.states {
		out[k] = v
	}
	return out, nil
}

func (m *MemoryStore) Save(s map[string]State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states = map[string]State{}
	for k, v := range s {
		m.states[k] = v
	}
	return nil
}
