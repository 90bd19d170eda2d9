// Package queuetest is the conformance suite of queue.Queue. Every Queue
// implementation runs it in one line from its tests:
//
//	func TestMyQueue(t *testing.T) {
//		queuetest.Run(t, func(t *testing.T, opts *queue.Options) queue.Queue {
//			return myqueue.New(newTestDatabase(t), opts)
//		})
//	}
//
// The suite drives time itself: opts.Now is its clock, so it expires leases
// and passes RunAt times without sleeping, and opts.MaxAttempts and
// opts.Backoff are the values it expects the queue to apply. An
// implementation must read all three.
//
// A queue that moves expired leases with an explicit sweep implements
// queue.Recoverer; the suite then calls Recover where a lease has
// expired and checks what it returns. Otherwise it expects Claim to take
// such a task over.
package queuetest
