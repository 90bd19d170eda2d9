package engine

import (
	"sync"
	"sync/atomic"
	"time"
)

// Event types published on the Bus.
const (
	EventDatasourceStatus = "datasource:status-changed"
	EventExecutionStatus  = "execution:status-changed"
)

// Event is one status change, as the HTTP API streams it (server-sent events).
type Event struct {
	Type     string         `json:"type"`
	EntityID string         `json:"entity_id"`
	Status   string         `json:"status"`
	At       time.Time      `json:"at"`
	Data     map[string]any `json:"data,omitempty"`
}

// Bus is an in-process publish/subscribe of Events. Publish never blocks:
// a subscriber whose buffer is full misses the event (Dropped counts them),
// so a slow reader can never hold up a worker. The zero value is ready.
type Bus struct {
	mu      sync.Mutex
	subs    map[*subscription]struct{}
	dropped atomic.Int64
}

type subscription struct {
	ch chan Event
}

// Subscribe returns a channel receiving every event published from now on,
// buffered to buffer events (at least 1), and a function that ends the
// subscription and closes the channel.
func (b *Bus) Subscribe(buffer int) (<-chan Event, func()) {
	s := &subscription{ch: make(chan Event, max(buffer, 1))}
	b.mu.Lock()
	if b.subs == nil {
		b.subs = make(map[*subscription]struct{})
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
			close(s.ch)
		})
	}
}

// Publish hands ev to every subscriber that has room for it.
func (b *Bus) Publish(ev Event) {
	if ev.At.IsZero() {
		ev.At = time.Now().UTC()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- ev:
		default:
			b.dropped.Add(1)
		}
	}
}

// Dropped is how many deliveries were skipped because a subscriber was full.
func (b *Bus) Dropped() int64 { return b.dropped.Load() }

// Subscribers is the number of live subscriptions.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
