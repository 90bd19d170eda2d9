package engine

import (
	"sync"
	"testing"
	"time"
)

func TestBusDeliversAndNeverBlocks(t *testing.T) {
	var b Bus
	fast, stopFast := b.Subscribe(100)
	slow, stopSlow := b.Subscribe(1) // never read until the end
	defer stopSlow()
	var wg sync.WaitGroup
	var got []Event
	wg.Go(func() {
		for ev := range fast {
			got = append(got, ev)
		}
	})
	done := make(chan struct{})
	go func() {
		for i := range 50 {
			b.Publish(Event{Type: EventExecutionStatus, EntityID: "x", Status: string(rune('a' + i%26))})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a slow subscriber")
	}
	stopFast()
	wg.Wait()
	if len(got) != 50 || got[0].At.IsZero() {
		t.Fatalf("fast subscriber got %d events", len(got))
	}
	if len(slow) != 1 || b.Dropped() != 49 {
		t.Fatalf("slow subscriber holds %d, dropped %d; want 1 and 49", len(slow), b.Dropped())
	}
	stopFast() // idempotent
	if b.Subscribers() != 1 {
		t.Fatalf("subscribers = %d", b.Subscribers())
	}
}
