package consumer

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

var seedFlag = flag.Uint64("consumer.seed", 0, "run TestRandom with only this seed")

// TestRandom drives a group with random joins, leaves, heartbeats, ticks and
// metadata changes, checking after every step that no partition is held by
// two members (server side) or owned by two live clients, then lets the
// clients settle and checks that every subscribed partition is assigned
// exactly once and that replaying the records rebuilds the same group.
func TestRandom(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	if *seedFlag != 0 {
		seeds = []uint64{*seedFlag}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d (rerun with -consumer.seed=%d)", seed, seed)
			runRandom(t, seed)
		})
	}
}

const randomSteps = 400

func runRandom(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	h := newHarness(t, Options{SessionTimeout: 10 * time.Second, HeartbeatInterval: time.Second})
	names := []string{"ta", "tb", "tc", "other"}
	h.topics.add("ta", 3)
	h.topics.add("tb", 5)
	var clients []*client
	nextID := 0
	insts := []string{"s1", "s2"}
	newClient := func() *client {
		nextID++
		c := &client{id: fmt.Sprintf("m%03d", nextID)}
		switch r.IntN(4) {
		case 0:
			c.regex = strp("t.")
		default:
			for _, n := range names {
				if r.IntN(2) == 0 {
					c.topics = append(c.topics, n)
				}
			}
		}
		if r.IntN(4) == 0 {
			c.inst = strp(insts[r.IntN(len(insts))])
		}
		if r.IntN(5) == 0 {
			c.assignor = strp(AssignorRange)
		}
		return c
	}
	live := func() []*client {
		var out []*client
		for _, c := range clients {
			if !c.gone {
				out = append(out, c)
			}
		}
		return out
	}
	for step := range randomSteps {
		ls := live()
		switch op := r.IntN(10); {
		case op == 0 && len(ls) < 8:
			c := newClient()
			clients = append(clients, c)
			if resp := h.beat(c, true); resp.ErrorCode != 0 {
				c.gone = true
			}
		case op <= 4 && len(ls) > 0:
			c := ls[r.IntN(len(ls))]
			h.beat(c, r.IntN(2) == 0)
			if c.epoch == 0 && !c.gone { // fenced: rejoin with the same ID
				h.beat(c, true)
			}
		case op == 5 && len(ls) > 0:
			c := ls[r.IntN(len(ls))]
			epoch := int32(-1)
			if c.inst != nil && r.IntN(2) == 0 {
				epoch = -2
			}
			h.leave(c, epoch)
			c.gone = true
		case op == 6:
			h.now = h.now.Add(time.Duration(r.IntN(4000)) * time.Millisecond)
			if !h.g.Deadline().After(h.now) {
				h.tick()
			}
		case op == 7:
			switch n := names[r.IntN(len(names))]; {
			case h.topics.byName[n].Partitions == 0:
				h.topics.add(n, int32(1+r.IntN(4)))
			case h.topics.byName[n].Partitions < 12:
				h.topics.grow(n, h.topics.byName[n].Partitions+1)
			}
			h.metadataChanged()
		case op == 8 && len(ls) > 0:
			c := ls[r.IntN(len(ls))]
			c.topics, c.regex = nil, nil
			if r.IntN(3) == 0 {
				c.regex = strp("t[ab]")
			} else {
				c.topics = []string{names[r.IntN(len(names))]}
			}
			h.beat(c, true)
		case op == 9 && step%50 == 0:
			h.checkReplay()
		}
		checkClients(t, h.g, clients)
	}

	// Settle: every live client heartbeats in full each second; static
	// members that left temporarily expire.
	for round := 0; round < 40; round++ {
		h.now = h.now.Add(time.Second)
		for _, c := range live() {
			h.beat(c, true)
			if c.epoch == 0 && !c.gone {
				h.beat(c, true)
			}
		}
		h.tick()
		checkClients(t, h.g, clients)
		if round > 12 && h.g.State() != "reconciling" {
			break
		}
	}
	if s := h.g.State(); s != "stable" && s != "empty" {
		t.Fatalf("group did not settle: %s", s)
	}
	// Every partition of every subscribed topic is assigned exactly once,
	// and each client owns what the server assigned it.
	assigned := map[tp]string{}
	for _, c := range live() {
		m := h.g.members[c.id]
		if m == nil {
			t.Fatalf("live client %s unknown to the group", c.id)
		}
		if !c.owned.equal(m.assigned) {
			t.Fatalf("client %s owns %v, server says %v", c.id, c.owned, m.assigned)
		}
		for id, ps := range m.assigned {
			for _, p := range ps {
				assigned[tp{id, p}] = c.id
			}
		}
	}
	for name := range h.topics.byName {
		if !h.g.Subscribed(name) {
			continue
		}
		top := h.topics.byName[name]
		for p := range top.Partitions {
			if _, ok := assigned[tp{top.ID, p}]; !ok {
				t.Fatalf("%s/%d subscribed but not assigned", name, p)
			}
		}
	}
	h.checkReplay()
	t.Logf("epoch %d, %d members, %d records, state %s", h.g.Epoch(), h.g.Members(), len(h.log), h.g.State())
}
