// Package workerslot keeps the stable identities of task workers (see
// worker.Options.Owner): a worker leases its tasks as
// "{identity}/{host}:{pid}:{random}". The identity is the ID kept in a slot
// file, {data directory}/workers/slot-N, which the worker locks (an
// advisory file lock, released by the kernel when the process dies, even
// by SIGKILL) for as long as it runs. A restarted process takes the same
// slot, so it knows the tasks leased under that identity are its dead
// predecessor's; a second process running on the same data directory at
// the same time finds slot 0 locked and takes slot 1, an identity of its
// own.
//
// It is internal to the engine's packages: package worker takes a slot as
// it starts, and the engine's tests take one to play a worker's dead
// predecessor.
package workerslot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
)

const (
	// Dir is the directory of the slot files, under the data directory.
	Dir      = "workers"
	slotName = "slot-"
	// maxSlots bounds the workers running at once on one data
	// directory with a stable identity; more run without one.
	maxSlots = 64
)

// errTaken reports a slot file locked by another live worker.
var errTaken = errors.New("worker slot taken")

// Slot is a worker identity this process holds.
type Slot struct {
	// ID is the identity: a UUID, kept in the slot file.
	ID string
	f  *os.File
}

// Take locks the first free slot file in dir (created, mode 0600, with a
// new ID when missing) and returns its identity. It fails with an error
// matching errors.ErrUnsupported where files cannot be locked.
func Take(dir string) (*Slot, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("worker identity: %w", err)
	}
	for n := range maxSlots {
		s, err := open(filepath.Join(dir, fmt.Sprintf("%s%d", slotName, n)))
		if errors.Is(err, errTaken) {
			continue
		}
		return s, err
	}
	return nil, fmt.Errorf("worker identity: all %d slots in %s are held by running workers", maxSlots, dir)
}

func open(path string) (*Slot, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("worker identity: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if !errors.Is(err, errTaken) {
			err = fmt.Errorf("worker identity: lock %s: %w", path, err)
		}
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, 128))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("worker identity: read %s: %w", path, err)
	}
	id := strings.TrimSpace(string(b))
	if uuid.Validate(id) != nil { // new (or damaged): a fresh identity
		id = uuid.NewString()
		if err := writeID(f, id); err != nil {
			f.Close()
			return nil, fmt.Errorf("worker identity: write %s: %w", path, err)
		}
	}
	return &Slot{ID: id, f: f}, nil
}

func writeID(f *os.File, id string) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(id+"\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}

// Release unlocks the slot for the next worker.
func (s *Slot) Release() { s.f.Close() }
