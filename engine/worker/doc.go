// Package worker runs the tasks of a durable queue (queue.Queue): it
// claims them, holds each claim with a heartbeat while the task runs, one
// task at a time per datasource, hands back the tasks it cannot finish,
// fails the executions of dead processes' tasks that will not run again
// (queue.Recoverer) and, as it starts, takes back the tasks its own dead
// predecessor held (queue.Adopter), under a stable identity of the data
// directory.
//
// The worker knows the queue and nothing of backups. What a task's
// execution is, how it runs, and how it is recorded queued again or failed
// belong to the engine, which gives them to New as a Host: a struct of
// callbacks rather than an *engine.Engine, so this package does not import
// the engine (package engine re-exports Worker and Options, and builds the
// Host in engine.NewWorker).
//
// Two pieces are not here although they are the worker's:
//   - The identity slots (files {DataDir}/workers/slot-N, locked while a
//     worker runs) are in engine/internal/workerslot: the engine's restart
//     test takes a slot to play a worker's dead predecessor, which an
//     unexported function of this package could not offer without making
//     it public API.
//   - What the engine does with a task it runs, hands back or fails
//     (writing executions, their logs, events and storage) stays in the
//     engine: it is orchestration, reached through Host.
package worker
