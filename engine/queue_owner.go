package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
)

// Worker identities (WorkerOptions.Owner): a worker leases its tasks as
// "{identity}/{host}:{pid}:{random}". The identity is the ID kept in a slot
// file, DataDir/workers/slot-N, which the worker locks (an advisory file
// lock, released by the kernel when the process dies, even by SIGKILL)
// for as long as it runs. A restarted process takes the same slot, so it
// knows the tasks leased under that identity are its dead predecessor's;
// a second process running on the same data directory at the same time
// finds slot 0 locked and takes slot 1, an identity of its own.
const (
	workerSlotDir  = "workers"
	workerSlotName = "slot-"
	// maxWorkerSlots bounds the workers running at once on one data
	// directory with a stable identity; more run without one.
	maxWorkerSlots = 64
)

// errSlotTaken reports a slot file locked by another live worker.
var errSlotTaken = errors.New("worker slot taken")

// workerSlot is a worker identity this process holds.
type workerSlot struct {
	id string
	f  *os.File
}

// takeWorkerSlot locks the first free slot file in dir (created, mode
// 0600, with a new ID when missing) and returns its identity. It fails
// with an error matching errors.ErrUnsupported where files cannot be
// locked.
func takeWorkerSlot(dir string) (*workerSlot, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("worker identity: %w", err)
	}
	for n := range maxWorkerSlots {
		s, err := openWorkerSlot(filepath.Join(dir, fmt.Sprintf("%s%d", workerSlotName, n)))
		if errors.Is(err, errSlotTaken) {
			continue
		}
		return s, err
	}
	return nil, fmt.Errorf("worker identity: all %d slots in %s are held by running workers", maxWorkerSlots, dir)
}

func openWorkerSlot(path string) (*workerSlot, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("worker identity: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if !errors.Is(err, errSlotTaken) {
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
		if err := writeSlotID(f, id); err != nil {
			f.Close()
			return nil, fmt.Errorf("worker identity: write %s: %w", path, err)
		}
	}
	return &workerSlot{id: id, f: f}, nil
}

func writeSlotID(f *os.File, id string) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(id+"\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}

// release unlocks the slot for the next worker.
func (s *workerSlot) release() { s.f.Close() }
