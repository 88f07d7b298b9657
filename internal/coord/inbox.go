package coord

import "sync"

// Inbox is a coordinator's bounded input: any goroutine sends, the owner
// goroutine reads C until Quit. Safe for concurrent use.
type Inbox[M any] struct {
	c    chan M
	quit chan struct{}
	mu   sync.RWMutex // held for reading while sending on c
	done bool         // Close ran: sends are refused
	stop sync.Once
}

// NewInbox returns an inbox holding up to n messages.
func NewInbox[M any](n int) *Inbox[M] {
	return &Inbox[M]{c: make(chan M, n), quit: make(chan struct{})}
}

// C is what the owner reads.
func (in *Inbox[M]) C() <-chan M { return in.c }

// Quit is closed by Stop: the owner exits.
func (in *Inbox[M]) Quit() <-chan struct{} { return in.quit }

// Send queues m, blocking while the inbox is full; false once the
// coordinator is stopping (m was not queued).
func (in *Inbox[M]) Send(m M) bool {
	in.mu.RLock()
	defer in.mu.RUnlock()
	if in.done {
		return false
	}
	select {
	case in.c <- m:
		return true
	case <-in.quit:
		return false
	}
}

// Stop tells the owner to exit; later calls do nothing.
func (in *Inbox[M]) Stop() { in.stop.Do(func() { close(in.quit) }) }

// Close refuses every later Send and hands each message still queued to
// drain, so none goes unanswered. Call it once the owner has exited.
func (in *Inbox[M]) Close(drain func(M)) {
	in.mu.Lock()
	in.done = true
	in.mu.Unlock()
	for {
		select {
		case m := <-in.c:
			drain(m)
		default:
			return
		}
	}
}

// Queue hands results of asynchronous work (a Log's done callbacks) from
// any goroutine to the owner without ever blocking the sender: Push adds,
// the owner wakes on C and takes them all. Safe for concurrent use.
type Queue[T any] struct {
	mu    sync.Mutex
	items []T
	wake  chan struct{} // room for one signal
}

// NewQueue returns an empty queue.
func NewQueue[T any]() *Queue[T] { return &Queue[T]{wake: make(chan struct{}, 1)} }

// Push adds v and wakes the owner; it never blocks.
func (q *Queue[T]) Push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.Wake()
}

// Wake signals the owner without adding anything; it never blocks.
func (q *Queue[T]) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// C is signalled after a Push or Wake.
func (q *Queue[T]) C() <-chan struct{} { return q.wake }

// Take removes and returns everything pushed so far, in push order.
func (q *Queue[T]) Take() []T {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}

// Len is how many items wait.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
