package consumer

import (
	"cmp"
	"container/heap"
	"slices"
)

// assignMember is one member as the assignors see it.
type assignMember struct {
	id     string
	key    string          // sort key for range: the instance ID if static, else the member ID
	topics map[string]bool // subscribed topic names that exist
	prev   assignment      // current target, for stickiness
}

// assignInput is what an assignor needs: members sorted by id and the
// existing subscribed topics sorted by name.
type assignInput struct {
	members []assignMember
	topics  []TopicInfo
}

// runAssignor computes a target assignment for every member (members with
// nothing assigned get an empty assignment). Both assignors are
// deterministic: the same input gives the same output.
func runAssignor(name string, in assignInput) map[string]assignment {
	out := make(map[string]assignment, len(in.members))
	for _, m := range in.members {
		out[m.id] = assignment{}
	}
	if len(in.members) == 0 {
		return out
	}
	if name == AssignorRange {
		assignRange(in, out)
	} else {
		assignUniform(in, out)
	}
	return out
}

// assignRange gives each member, topic by topic, a contiguous range of
// partitions, as Kafka's RangeAssignor: members subscribed to the same
// topics with the same partition counts get the same partition numbers of
// each (co-partitioning). Members are ordered by instance ID when static so
// that a restarted static member gets its ranges back.
func assignRange(in assignInput, out map[string]assignment) {
	for _, t := range in.topics {
		var subs []assignMember
		for _, m := range in.members {
			if m.topics[t.Name] {
				subs = append(subs, m)
			}
		}
		if len(subs) == 0 {
			continue
		}
		slices.SortFunc(subs, func(a, b assignMember) int {
			return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.id, b.id))
		})
		n := int32(len(subs))
		per, extra := t.Partitions/n, t.Partitions%n
		start := int32(0)
		for i, m := range subs {
			size := per
			if int32(i) < extra {
				size++
			}
			for p := start; p < start+size; p++ {
				out[m.id].add(t.ID, p)
			}
			start += size
		}
	}
}

// assignUniform spreads partitions evenly over the members subscribed to
// them while keeping as many current assignments as possible. When every
// member subscribes to the same topics the result is balanced exactly
// (member counts differ by at most one), moving only the partitions needed
// to get there; otherwise the balance is best effort, as Kafka's
// heterogeneous uniform assignor.
func assignUniform(in assignInput, out map[string]assignment) {
	homogeneous := true
	for _, m := range in.members[1:] {
		if !sameTopics(m.topics, in.members[0].topics) {
			homogeneous = false
			break
		}
	}
	byID := make(map[[16]byte]TopicInfo, len(in.topics))
	for _, t := range in.topics {
		byID[t.ID] = t
	}
	claimed := map[tp]bool{}
	// retained returns m's current target partitions that are still valid
	// and not claimed by a member before it, in topic-name then partition
	// order.
	retained := func(m assignMember) []tp {
		var r []tp
		for _, id := range m.prev.topicIDs() {
			t, ok := byID[id]
			if !ok || !m.topics[t.Name] {
				continue
			}
			for _, p := range m.prev[id] {
				if p < t.Partitions && !claimed[tp{id, p}] {
					r = append(r, tp{id, p})
				}
			}
		}
		return r
	}
	if homogeneous {
		assignHomogeneous(in, out, claimed, retained)
	} else {
		assignHeterogeneous(in, out, claimed, retained)
	}
}

func sameTopics(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for t := range a {
		if !b[t] {
			return false
		}
	}
	return true
}

func assignHomogeneous(in assignInput, out map[string]assignment, claimed map[tp]bool, retained func(assignMember) []tp) {
	var total int64
	for _, t := range in.topics {
		if in.members[0].topics[t.Name] {
			total += int64(t.Partitions)
		}
	}
	n := int64(len(in.members))
	minQ, extra := int(total/n), int(total%n)

	// Members that own more keep their quota first, so that the +1 slots
	// go to members that already hold the partition: fewer moves.
	type kept struct {
		m assignMember
		r []tp
	}
	ks := make([]kept, len(in.members))
	for i, m := range in.members {
		ks[i] = kept{m, retained(m)}
		for _, x := range ks[i].r {
			claimed[x] = true
		}
	}
	order := make([]int, len(ks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(ks[b].r), len(ks[a].r)) })
	counts := make([]int, len(ks))
	for k := range claimed {
		delete(claimed, k)
	}
	for _, i := range order {
		keep := minQ
		if len(ks[i].r) > minQ && extra > 0 {
			keep++
			extra--
		}
		keep = min(keep, len(ks[i].r))
		for _, x := range ks[i].r[:keep] {
			out[ks[i].m.id].add(x.id, x.p)
			claimed[x] = true
		}
		counts[i] = keep
	}
	// Hand out the rest in topic-name then partition order: first up to
	// the minimum quota, then the +1 slots still free.
	var free []tp
	for _, t := range in.topics {
		if !in.members[0].topics[t.Name] {
			continue
		}
		for p := range t.Partitions {
			if !claimed[tp{t.ID, p}] {
				free = append(free, tp{t.ID, p})
			}
		}
	}
	for i := range ks {
		for counts[i] < minQ && len(free) > 0 {
			out[ks[i].m.id].add(free[0].id, free[0].p)
			free = free[1:]
			counts[i]++
		}
	}
	for i := range ks {
		if len(free) == 0 {
			break
		}
		if counts[i] == minQ {
			out[ks[i].m.id].add(free[0].id, free[0].p)
			free = free[1:]
			counts[i]++
		}
	}
}

// heterogeneousRoundsMax bounds the rebalancing pass of the heterogeneous
// case; each round moves at most one partition per topic.
const heterogeneousRoundsMax = 1000

func assignHeterogeneous(in assignInput, out map[string]assignment, claimed map[tp]bool, retained func(assignMember) []tp) {
	idx := make(map[string]int, len(in.members))
	counts := make([]int, len(in.members))
	for i, m := range in.members {
		idx[m.id] = i
		for _, x := range retained(m) {
			out[m.id].add(x.id, x.p)
			claimed[x] = true
			counts[i]++
		}
	}
	// Topic by topic, unclaimed partitions go to the least loaded
	// subscriber (ties by member ID).
	eligible := make([][]int, len(in.topics))
	for ti, t := range in.topics {
		for i, m := range in.members {
			if m.topics[t.Name] {
				eligible[ti] = append(eligible[ti], i)
			}
		}
		if len(eligible[ti]) == 0 {
			continue
		}
		h := &loadHeap{counts: counts}
		h.items = slices.Clone(eligible[ti])
		heap.Init(h)
		for p := range t.Partitions {
			if claimed[tp{t.ID, p}] {
				continue
			}
			i := h.items[0]
			out[in.members[i].id].add(t.ID, p)
			counts[i]++
			heap.Fix(h, 0)
		}
	}
	// Retained assignments may leave a member far above its peers: move
	// partitions, one per topic per round, from the most loaded holder to
	// the least loaded subscriber while they differ by two or more.
	for range heterogeneousRoundsMax {
		moved := false
		for ti, t := range in.topics {
			lo, hi := -1, -1
			for _, i := range eligible[ti] {
				if lo < 0 || counts[i] < counts[lo] {
					lo = i
				}
				if len(out[in.members[i].id][t.ID]) > 0 && (hi < 0 || counts[i] > counts[hi]) {
					hi = i
				}
			}
			if lo < 0 || hi < 0 || counts[hi]-counts[lo] < 2 {
				continue
			}
			from, to := out[in.members[hi].id], out[in.members[lo].id]
			ps := from[t.ID]
			p := ps[len(ps)-1]
			if len(ps) == 1 {
				delete(from, t.ID)
			} else {
				from[t.ID] = ps[:len(ps)-1]
			}
			to.add(t.ID, p)
			counts[hi]--
			counts[lo]++
			moved = true
		}
		if !moved {
			break
		}
	}
}

// loadHeap orders member indexes by load, then index (members are sorted by
// ID, so ties go to the smaller ID).
type loadHeap struct {
	items  []int
	counts []int
}

func (h *loadHeap) Len() int { return len(h.items) }
func (h *loadHeap) Less(a, b int) bool {
	ia, ib := h.items[a], h.items[b]
	if h.counts[ia] != h.counts[ib] {
		return h.counts[ia] < h.counts[ib]
	}
	return ia < ib
}
func (h *loadHeap) Swap(a, b int) { h.items[a], h.items[b] = h.items[b], h.items[a] }
func (h *loadHeap) Push(x any)    { h.items = append(h.items, x.(int)) }
func (h *loadHeap) Pop() any {
	x := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return x
}
