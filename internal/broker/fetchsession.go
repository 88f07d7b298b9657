package broker

import (
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch sessions (KIP-227, Fetch v7+). A client opens a session with a full
// fetch (epoch 0); the broker remembers the partitions and their fetch
// state, and later fetches (epoch 1, 2, ...) send only what changed, while
// the response carries only partitions with news: records, an error, or a
// moved high watermark or log start.
//
//	session id  epoch  meaning
//	0           -1     full fetch, no session (and the response's id is 0)
//	0           0      full fetch opening a new session
//	n           0      close session n, open a new one
//	n           -1     close session n; full fetch, no session
//	n           k>0    incremental fetch in session n; k must be its epoch

// fetchKey names a partition in a session: by topic ID from v13, by name
// before.
type fetchKey struct {
	id   [16]byte
	name string
	part int32
}

type sessionPart struct {
	key      fetchKey
	offset   int64
	maxBytes int32
	epoch    int32 // current leader epoch the client sent
	// What the last response told the client, so an incremental
	// response can leave out partitions without news; -1 forces the
	// next one to include it.
	lastHW, lastLogStart int64
}

type fetchSession struct {
	id int32

	mu       sync.Mutex
	epoch    int32 // the epoch the next incremental fetch must carry
	parts    []*sessionPart
	index    map[fetchKey]*sessionPart
	lastUsed time.Time
}

// fetchSessions is the broker's session cache, bounded by slots; when full,
// the least recently used session is evicted (its client gets
// FETCH_SESSION_ID_NOT_FOUND and starts a new one).
type fetchSessions struct {
	mu    sync.Mutex
	slots int
	next  int32
	byID  map[int32]*fetchSession
}

func newFetchSessions(slots int) *fetchSessions {
	return &fetchSessions{slots: slots, next: 1, byID: map[int32]*fetchSession{}}
}

func (fs *fetchSessions) remove(id int32) {
	fs.mu.Lock()
	delete(fs.byID, id)
	fs.mu.Unlock()
}

func (fs *fetchSessions) create(now time.Time) *fetchSession {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.slots <= 0 {
		return nil
	}
	if len(fs.byID) >= fs.slots {
		var oldest *fetchSession
		for _, s := range fs.byID {
			s.mu.Lock()
			if oldest == nil || s.lastUsed.Before(oldest.lastUsed) {
				oldest = s
			}
			s.mu.Unlock()
		}
		delete(fs.byID, oldest.id)
	}
	for fs.byID[fs.next] != nil || fs.next <= 0 {
		fs.next++
		if fs.next <= 0 {
			fs.next = 1
		}
	}
	s := &fetchSession{id: fs.next, epoch: 1, index: map[fetchKey]*sessionPart{}, lastUsed: now}
	fs.byID[s.id] = s
	fs.next++
	return s
}

func (fs *fetchSessions) get(id int32) *fetchSession {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.byID[id]
}

// Len returns the number of cached sessions.
func (fs *fetchSessions) Len() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return len(fs.byID)
}

// openSession applies a request's session fields: it returns the session
// the fetch belongs to (nil for a sessionless fetch), whether the fetch is
// full (the request lists every partition) and a request-level error.
func (fs *fetchSessions) open(req *kmsg.FetchRequest, now time.Time) (s *fetchSession, full bool, err error) {
	if req.Version < 7 {
		return nil, true, nil
	}
	switch {
	case req.SessionEpoch == -1:
		if req.SessionID != 0 {
			fs.remove(req.SessionID)
		}
		return nil, true, nil
	case req.SessionEpoch == 0:
		if req.SessionID != 0 {
			fs.remove(req.SessionID)
		}
		return fs.create(now), true, nil
	case req.SessionEpoch < -1:
		return nil, false, fmt.Errorf("%w: epoch %d", errInvalidFetchSessionEpoch, req.SessionEpoch)
	}
	s = fs.get(req.SessionID)
	if s == nil {
		return nil, false, fmt.Errorf("%w: session %d", errFetchSessionNotFound, req.SessionID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.SessionEpoch != s.epoch {
		return nil, false, fmt.Errorf("%w: session %d expects epoch %d, got %d", errInvalidFetchSessionEpoch, s.id, s.epoch, req.SessionEpoch)
	}
	s.lastUsed = now
	return s, false, nil
}

// update records a requested partition's fetch state, adding it if new.
// Called with s.mu held.
func (s *fetchSession) updateLocked(k fetchKey, offset int64, maxBytes, epoch int32) *sessionPart {
	sp := s.index[k]
	if sp == nil {
		sp = &sessionPart{key: k, lastHW: -1, lastLogStart: -1}
		s.index[k] = sp
		s.parts = append(s.parts, sp)
	}
	sp.offset, sp.maxBytes, sp.epoch = offset, maxBytes, epoch
	return sp
}

// forgetLocked drops a partition from the session.
func (s *fetchSession) forgetLocked(k fetchKey) {
	if s.index[k] == nil {
		return
	}
	delete(s.index, k)
	for i, sp := range s.parts {
		if sp.key == k {
			s.parts = append(s.parts[:i], s.parts[i+1:]...)
			break
		}
	}
}

// rotateLocked moves the partitions that just returned records to the end,
// so a partition with a steady stream cannot starve the others of the
// response's byte budget.
func (s *fetchSession) rotateLocked(served map[*sessionPart]bool) {
	if len(served) == 0 || len(served) == len(s.parts) {
		return
	}
	out := make([]*sessionPart, 0, len(s.parts))
	for _, sp := range s.parts {
		if !served[sp] {
			out = append(out, sp)
		}
	}
	for _, sp := range s.parts {
		if served[sp] {
			out = append(out, sp)
		}
	}
	s.parts = out
}

func (s *fetchSession) bumpEpochLocked() {
	s.epoch++
	if s.epoch <= 0 {
		s.epoch = 1
	}
}
