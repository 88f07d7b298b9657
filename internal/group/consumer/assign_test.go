package consumer

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// owners maps each assigned partition to its member and fails the test
// if one is assigned twice.
func ownersOf(t *testing.T, out map[string]assignment) map[tp]string {
	t.Helper()
	o := map[tp]string{}
	for id, a := range out {
		for tid, ps := range a {
			for _, p := range ps {
				if prev, dup := o[tp{tid, p}]; dup {
					t.Fatalf("partition %v/%d assigned to %s and %s", tid[15], p, prev, id)
				}
				o[tp{tid, p}] = id
			}
		}
	}
	return o
}

func randomInput(r *rand.Rand, homogeneous bool) assignInput {
	var in assignInput
	nt := 1 + r.IntN(5)
	for i := range nt {
		t := TopicInfo{Name: fmt.Sprintf("t%d", i), Partitions: int32(1 + r.IntN(20))}
		t.ID[0], t.ID[15] = 0xAB, byte(i+1)
		in.topics = append(in.topics, t)
	}
	nm := 1 + r.IntN(12)
	for i := range nm {
		m := assignMember{id: fmt.Sprintf("m%02d", i), topics: map[string]bool{}}
		m.key = m.id
		for _, t := range in.topics {
			if homogeneous || r.IntN(2) == 0 {
				m.topics[t.Name] = true
			}
		}
		in.members = append(in.members, m)
	}
	return in
}

func counts(out map[string]assignment) (lo, hi int) {
	lo = -1
	for _, a := range out {
		n := a.count()
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return lo, hi
}

func TestUniformBalancedAndSticky(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 1))
		in := randomInput(r, true)
		out := runAssignor(AssignorUniform, in)
		own := ownersOf(t, out)
		total := 0
		for _, tp := range in.topics {
			total += int(tp.Partitions)
		}
		if len(own) != total {
			t.Fatalf("seed %d: %d of %d partitions assigned", seed, len(own), total)
		}
		if lo, hi := counts(out); hi-lo > 1 {
			t.Fatalf("seed %d: unbalanced %d..%d", seed, lo, hi)
		}
		if again := runAssignor(AssignorUniform, in); !reflect.DeepEqual(again, out) {
			t.Fatalf("seed %d: not deterministic", seed)
		}

		// A member joins: only what it gets moves.
		for i := range in.members {
			in.members[i].prev = out[in.members[i].id]
		}
		newcomer := assignMember{id: "zz", key: "zz", topics: in.members[0].topics}
		in2 := in
		in2.members = append(append([]assignMember{}, in.members...), newcomer)
		out2 := runAssignor(AssignorUniform, in2)
		own2 := ownersOf(t, out2)
		if lo, hi := counts(out2); hi-lo > 1 {
			t.Fatalf("seed %d: unbalanced after join %d..%d", seed, lo, hi)
		}
		for p, o := range own2 {
			if o != "zz" && own[p] != o {
				t.Fatalf("seed %d: partition moved from %s to %s, not to the newcomer", seed, own[p], o)
			}
		}

		// A member leaves: the others keep everything they had.
		if len(in.members) < 2 {
			continue
		}
		in3 := in
		in3.members = in.members[1:]
		out3 := runAssignor(AssignorUniform, in3)
		ownersOf(t, out3)
		for _, m := range in3.members {
			for tid, ps := range m.prev {
				for _, p := range ps {
					if !out3[m.id].has(tid, p) {
						t.Fatalf("seed %d: %s lost %d after another member left", seed, m.id, p)
					}
				}
			}
		}
		if lo, hi := counts(out3); hi-lo > 1 {
			t.Fatalf("seed %d: unbalanced after leave %d..%d", seed, lo, hi)
		}
	}
}

func TestUniformHeterogeneous(t *testing.T) {
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 2))
		in := randomInput(r, false)
		out := runAssignor(AssignorUniform, in)
		own := ownersOf(t, out)
		for _, top := range in.topics {
			subscribed := false
			for _, m := range in.members {
				subscribed = subscribed || m.topics[top.Name]
			}
			for p := range top.Partitions {
				o, ok := own[tp{top.ID, p}]
				if ok != subscribed {
					t.Fatalf("seed %d: %s/%d assigned=%v subscribed=%v", seed, top.Name, p, ok, subscribed)
				}
				if ok {
					for _, m := range in.members {
						if m.id == o && !m.topics[top.Name] {
							t.Fatalf("seed %d: %s/%d given to non-subscriber %s", seed, top.Name, p, o)
						}
					}
				}
			}
		}
	}
}

func TestRangeSortsStaticMembersByInstance(t *testing.T) {
	top := TopicInfo{Name: "t", Partitions: 4}
	in := assignInput{topics: []TopicInfo{top}, members: []assignMember{
		{id: "a", key: "z-inst", topics: map[string]bool{"t": true}},
		{id: "b", key: "b", topics: map[string]bool{"t": true}},
	}}
	out := runAssignor(AssignorRange, in)
	if !reflect.DeepEqual(out["b"][top.ID], []int32{0, 1}) || !reflect.DeepEqual(out["a"][top.ID], []int32{2, 3}) {
		t.Fatalf("range: %v", out)
	}
}
