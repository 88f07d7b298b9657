package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestJoinSyncHeartbeatLeave(t *testing.T) {
	h := newHarness(t, nil)
	j := h.do("app", joinReq("g", ""))
	jr := h.joinResp(j)
	wantCode(t, "join", jr.ErrorCode, nil)
	if jr.Generation != 1 || jr.LeaderID != jr.MemberID || len(jr.Members) != 1 || *jr.Protocol != "range" {
		t.Fatalf("join response: %+v", jr)
	}
	if want := "app-1"; jr.MemberID != want {
		t.Fatalf("member id %q, want %q (client id + uuid)", jr.MemberID, want)
	}
	h.wantState("g", stateCompletingRebalance, 1)
	if len(h.events) != 1 || h.events[0].msg != "group rebalanced" {
		t.Fatalf("events %+v, want one rebalance to log", h.events)
	}

	s := h.do("app", syncReq("g", jr.MemberID, 1, map[string]string{jr.MemberID: "mine"}))
	if h.answered(s) {
		t.Fatal("leader's SyncGroup answered before its assignment was durable")
	}
	if len(h.pending) != 1 {
		t.Fatalf("%d writes pending, want the group record", len(h.pending))
	}
	h.flush(nil)
	sr := h.syncResp(s)
	if sr.ErrorCode != 0 || string(sr.MemberAssignment) != "mine" {
		t.Fatalf("sync response: %+v", sr)
	}
	h.wantState("g", stateStable, 1)

	wantCode(t, "heartbeat", h.heartbeat("g", jr.MemberID, 1), nil)

	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Version, lv.Group, lv.MemberID = 2, "g", jr.MemberID
	c := h.do("app", lv)
	wantCode(t, "leave", h.answers[c].(*kmsg.LeaveGroupResponse).ErrorCode, nil)
	h.wantState("g", stateEmpty, 2)
	if len(h.pending) != 1 {
		t.Fatalf("an emptied group must write its (empty) metadata, %d writes", len(h.pending))
	}
	wantCode(t, "heartbeat after leave", h.heartbeat("g", jr.MemberID, 2), kerr.UnknownMemberID)
}

func TestTwoStepJoin(t *testing.T) {
	h := newHarness(t, nil)
	first := h.joinResp(h.do("app", joinReq("g", "", withVersion(4))))
	wantCode(t, "first join", first.ErrorCode, kerr.MemberIDRequired)
	if first.MemberID == "" {
		t.Fatal("MEMBER_ID_REQUIRED without a member id")
	}
	if g := h.group("g"); len(g.members) != 0 || len(g.pending) != 1 {
		t.Fatalf("after the first step: %d members, %d pending", len(g.members), len(g.pending))
	}
	second := h.joinResp(h.do("app", joinReq("g", first.MemberID, withVersion(4))))
	wantCode(t, "second join", second.ErrorCode, nil)
	if second.MemberID != first.MemberID || second.Generation != 1 {
		t.Fatalf("second join: %+v", second)
	}

	// A pending member that never comes back expires after its session
	// timeout, and the never-used group is forgotten.
	h2 := newHarness(t, nil)
	h2.do("app", joinReq("lonely", "", withVersion(4)))
	h2.advance(10 * time.Second)
	if _, ok := h2.st.groups["lonely"]; ok {
		t.Fatal("a group with only an expired pending member lingers")
	}
}

func TestInitialRebalanceDelay(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.InitialRebalanceDelay = 3 * time.Second })
	a := h.do("a", joinReq("g", ""))
	h.advance(2 * time.Second)
	b := h.do("b", joinReq("g", ""))
	if h.answered(a) || h.answered(b) {
		t.Fatal("joins answered during the initial delay")
	}
	h.advance(time.Second) // t=3s: a member arrived, so wait another 3s
	if h.answered(a) {
		t.Fatal("the delay did not extend for a member that arrived during it")
	}
	h.advance(3 * time.Second) // t=6s
	ja, jb := h.joinResp(a), h.joinResp(b)
	if ja.Generation != 1 || jb.Generation != 1 || ja.LeaderID != ja.MemberID || len(ja.Members) != 2 {
		t.Fatalf("one generation for both: %+v / %+v", ja, jb)
	}
}

func TestInitialDelayBoundedByRebalanceTimeout(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.InitialRebalanceDelay = 3 * time.Second })
	first := h.do("a", joinReq("g", "", withTimeouts(10*time.Second, 5*time.Second)))
	for i := range 10 { // a member each second keeps arriving
		h.advance(time.Second)
		if h.answered(first) {
			if i < 4 {
				t.Fatalf("completed after %ds", i+1)
			}
			return
		}
		h.do("x", joinReq("g", "", withTimeouts(10*time.Second, 5*time.Second)))
	}
	t.Fatal("the initial delay outlived the rebalance timeout")
}

func TestRebalanceTimeoutRemovesSlowMember(t *testing.T) {
	h := newHarness(t, nil)
	ids := h.stableGroup("g", 2)
	leader := h.group("g").leader
	slow := ids[0]
	if slow == leader {
		slow = ids[1]
	}
	// The leader rejoins (asking for a rebalance); the other never does.
	j := h.do("c", joinReq("g", leader))
	h.wantState("g", statePreparingRebalance, 2)
	// It keeps heartbeating (its session is fine) but never rejoins.
	for range 5 { // 5 x 5.8s = 29s
		wantCode(t, "heartbeat while preparing", h.heartbeat("g", slow, 2), kerr.RebalanceInProgress)
		h.advance(29 * time.Second / 5)
	}
	if h.answered(j) {
		t.Fatal("join completed before the rebalance timeout")
	}
	h.advance(time.Second)
	jr := h.joinResp(j)
	if jr.Generation != 3 || len(jr.Members) != 1 || jr.Members[0].MemberID != leader {
		t.Fatalf("after the rebalance timeout: %+v", jr)
	}
	wantCode(t, "removed member's heartbeat", h.heartbeat("g", slow, 3), kerr.UnknownMemberID)
}

func TestSessionTimeoutExpiresMember(t *testing.T) {
	h := newHarness(t, nil)
	ids := h.stableGroup("g", 2)
	for range 2 {
		h.advance(4 * time.Second)
		wantCode(t, "heartbeat", h.heartbeat("g", ids[0], 2), nil)
	}
	h.advance(4 * time.Second)
	// ids[1] never heartbeat: 12s > its 10s session.
	h.wantState("g", statePreparingRebalance, 2)
	if _, ok := h.group("g").members[ids[1]]; ok {
		t.Fatal("silent member not expired")
	}
	wantCode(t, "survivor's heartbeat", h.heartbeat("g", ids[0], 2), kerr.RebalanceInProgress)
	j := h.do("c", joinReq("g", ids[0]))
	if jr := h.joinResp(j); jr.Generation != 3 || len(jr.Members) != 1 {
		t.Fatalf("rejoin: %+v", jr)
	}
}

func TestSyncTimeoutRemovesMemberThatNeverSyncs(t *testing.T) {
	h := newHarness(t, nil)
	a := h.joinResp(h.do("a", joinReq("g", "")))
	h.advance(30 * time.Second) // never syncs
	if _, ok := h.group("g").members[a.MemberID]; ok {
		t.Fatal("member that never synced was kept")
	}
	h.wantState("g", stateEmpty, 2)
}

func TestBatchLeave(t *testing.T) {
	h := newHarness(t, nil)
	ids := h.stableGroup("g", 3)
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Version, lv.Group = 5, "g"
	for _, id := range []string{ids[0], ids[1], "nobody"} {
		lv.Members = append(lv.Members, kmsg.LeaveGroupRequestMember{MemberID: id})
	}
	resp := h.answers[h.do("c", lv)].(*kmsg.LeaveGroupResponse)
	wantCode(t, "top level", resp.ErrorCode, nil)
	if len(resp.Members) != 3 {
		t.Fatalf("%d member responses", len(resp.Members))
	}
	wantCode(t, "first", resp.Members[0].ErrorCode, nil)
	wantCode(t, "second", resp.Members[1].ErrorCode, nil)
	wantCode(t, "unknown", resp.Members[2].ErrorCode, kerr.UnknownMemberID)
	if g := h.group("g"); len(g.members) != 1 || g.state != statePreparingRebalance {
		t.Fatalf("after batch leave: %d members, %v", len(g.members), g.state)
	}

	unknown := kmsg.NewPtrLeaveGroupRequest()
	unknown.Version, unknown.Group = 3, "nope"
	unknown.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "x"}}
	wantCode(t, "unknown group", h.answers[h.do("c", unknown)].(*kmsg.LeaveGroupResponse).ErrorCode, kerr.UnknownMemberID)
}

func TestStaticMemberReplacement(t *testing.T) {
	h := newHarness(t, nil)
	// Two static members.
	aProtos := withProtocols("roundrobin", "range")
	a := h.do("a", joinReq("g", "", withVersion(5), withInstance("ia"), aProtos))
	aid := h.joinResp(a).MemberID
	b := h.do("b", joinReq("g", "", withVersion(5), withInstance("ib")))
	h.do("a", joinReq("g", aid, withVersion(5), withInstance("ia"), aProtos))
	bid := h.joinResp(b).MemberID
	leader := h.group("g").leader
	h.do("a", syncReq("g", leader, 2, map[string]string{aid: "A", bid: "B"}))
	other := bid
	if leader == bid {
		other = aid
	}
	h.do("x", syncReq("g", other, 2, nil))
	h.flush(nil)
	h.wantState("g", stateStable, 2)

	// b restarts: same instance id, no member id, same protocols.
	for _, v := range []int16{5, 9} {
		old := h.group("g").static["ib"]
		oldLeader := h.group("g").leader
		c := h.do("b2", joinReq("g", "", withVersion(v), withInstance("ib")))
		if h.answered(c) {
			t.Fatal("replacement answered before the new member id was durable")
		}
		h.flush(nil)
		jr := h.joinResp(c)
		wantCode(t, "rejoin", jr.ErrorCode, nil)
		if jr.MemberID == old || jr.Generation != 2 {
			t.Fatalf("v%d replacement: %+v", v, jr)
		}
		h.wantState("g", stateStable, 2) // no rebalance
		if old == oldLeader && v < 9 && jr.LeaderID != oldLeader {
			t.Fatalf("v%d leader replacement told it leads: %+v", v, jr)
		}
		if g := h.group("g"); string(g.members[jr.MemberID].assignment) != "B" {
			t.Fatalf("replacement lost its assignment: %q", g.members[jr.MemberID].assignment)
		}
		hb := hbReq("g", old, 2)
		hb.InstanceID = kmsg.StringPtr("ib")
		wantCode(t, "old member id", h.answers[h.do("x", hb)].(*kmsg.HeartbeatResponse).ErrorCode, kerr.FencedInstanceID)
		s := h.syncResp(h.do("b2", syncReq("g", jr.MemberID, 2, nil)))
		if string(s.MemberAssignment) != "B" {
			t.Fatalf("replacement's assignment %q", s.MemberAssignment)
		}
	}

	// When the replacement's protocols change the group's choice
	// (both now prefer roundrobin), it rebalances.
	h.do("b3", joinReq("g", "", withVersion(5), withInstance("ib"), withProtocols("roundrobin", "range")))
	if g := h.group("g"); g.state != statePreparingRebalance {
		t.Fatalf("protocol change did not rebalance: %v", g.state)
	}
}

func TestStaticReplacementWriteFailureReverts(t *testing.T) {
	h := newHarness(t, nil)
	c := h.do("a", joinReq("g", "", withVersion(5), withInstance("i")))
	id := h.joinResp(c).MemberID
	h.do("a", syncReq("g", id, 1, map[string]string{id: "x"}))
	h.flush(nil)
	r := h.do("a2", joinReq("g", "", withVersion(5), withInstance("i")))
	h.flush(errTest)
	wantCode(t, "failed replacement", h.joinResp(r).ErrorCode, kerr.CoordinatorNotAvailable)
	if h.group("g").static["i"] != id {
		t.Fatal("the old member was not restored after the write failed")
	}
	wantCode(t, "old member heartbeat", h.heartbeat("g", id, 1), nil)
}

func TestGenerationFencing(t *testing.T) {
	h := newHarness(t, nil)
	ids := h.stableGroup("g", 1)
	wantCode(t, "stale generation", h.heartbeat("g", ids[0], 7), kerr.IllegalGeneration)
	wantCode(t, "unknown member", h.heartbeat("g", "ghost", 1), kerr.UnknownMemberID)
	wantCode(t, "unknown group", h.heartbeat("nope", ids[0], 1), kerr.UnknownMemberID)
	wantCode(t, "sync stale generation", h.syncResp(h.do("c", syncReq("g", ids[0], 7, nil))).ErrorCode, kerr.IllegalGeneration)
	s := syncReq("g", ids[0], 1, nil)
	s.Protocol = kmsg.StringPtr("roundrobin")
	wantCode(t, "sync wrong protocol", h.syncResp(h.do("c", s)).ErrorCode, kerr.InconsistentGroupProtocol)
	// A new member puts the group into a rebalance.
	h.do("d", joinReq("g", ""))
	wantCode(t, "during rebalance", h.heartbeat("g", ids[0], 1), kerr.RebalanceInProgress)
	wantCode(t, "sync during rebalance", h.syncResp(h.do("c", syncReq("g", ids[0], 1, nil))).ErrorCode, kerr.RebalanceInProgress)
}

func TestProtocolSelection(t *testing.T) {
	h := newHarness(t, nil)
	a := h.do("a", joinReq("g", "", withProtocols("range", "roundrobin", "sticky")))
	aid := h.joinResp(a).MemberID
	b := h.do("b", joinReq("g", "", withProtocols("roundrobin", "sticky")))
	c := h.do("c", joinReq("g", "", withProtocols("sticky", "roundrobin")))
	d := h.do("d", joinReq("g", "", withProtocols("roundrobin")))
	h.do("a", joinReq("g", aid, withProtocols("range", "roundrobin", "sticky")))
	for _, call := range []*call{b, c, d} {
		if jr := h.joinResp(call); *jr.Protocol != "roundrobin" {
			t.Fatalf("selected %q, want roundrobin (every member supports it, most prefer it)", *jr.Protocol)
		}
	}
	e := h.do("e", joinReq("g", "", withProtocols("range")))
	wantCode(t, "unsupported protocol", h.joinResp(e).ErrorCode, kerr.InconsistentGroupProtocol)
	f := h.do("f", joinReq("g", "", withProtocolType("connect"), withProtocols("roundrobin")))
	wantCode(t, "other protocol type", h.joinResp(f).ErrorCode, kerr.InconsistentGroupProtocol)
	empty := h.do("f", joinReq("fresh", "", withProtocolType("")))
	wantCode(t, "empty protocol type", h.joinResp(empty).ErrorCode, kerr.InconsistentGroupProtocol)
	if _, ok := h.st.groups["fresh"]; ok {
		t.Fatal("a failed first join left a group behind")
	}
}

func TestMaxGroupSize(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxGroupSize = 2 })
	h.stableGroup("g", 2)
	c := h.do("c", joinReq("g", ""))
	wantCode(t, "third member", h.joinResp(c).ErrorCode, kerr.GroupMaxSizeReached)
	for range 2 {
		h.do("p", joinReq("p", "", withVersion(4)))
	}
	wantCode(t, "third pending member", h.joinResp(h.do("p", joinReq("p", "", withVersion(4)))).ErrorCode, kerr.GroupMaxSizeReached)
}

func TestJoinValidation(t *testing.T) {
	h := newHarness(t, nil)
	wantCode(t, "empty group id", h.joinResp(h.do("c", joinReq("", ""))).ErrorCode, kerr.InvalidGroupID)
	wantCode(t, "session too short", h.joinResp(h.do("c", joinReq("g", "", withTimeouts(time.Second, time.Second)))).ErrorCode, kerr.InvalidSessionTimeout)
	wantCode(t, "session too long", h.joinResp(h.do("c", joinReq("g", "", withTimeouts(time.Hour, time.Second)))).ErrorCode, kerr.InvalidSessionTimeout)
	wantCode(t, "unknown member, no group", h.joinResp(h.do("c", joinReq("g", "who"))).ErrorCode, kerr.UnknownMemberID)
	wantCode(t, "sync empty id", h.syncResp(h.do("c", syncReq("", "m", 1, nil))).ErrorCode, kerr.InvalidGroupID)
	if len(h.st.groups) != 0 {
		t.Fatalf("failed joins left %d groups", len(h.st.groups))
	}
}

func TestSyncWriteFailureRebalances(t *testing.T) {
	h := newHarness(t, nil)
	id := h.joinResp(h.do("a", joinReq("g", ""))).MemberID
	s := h.do("a", syncReq("g", id, 1, map[string]string{id: "x"}))
	h.flush(errTest)
	wantCode(t, "sync with failed write", h.syncResp(s).ErrorCode, kerr.CoordinatorNotAvailable)
	h.wantState("g", statePreparingRebalance, 1)
}

func TestFollowerSyncWaitsForLeader(t *testing.T) {
	h := newHarness(t, nil)
	a := h.do("a", joinReq("g", ""))
	aid := h.joinResp(a).MemberID
	b := h.do("b", joinReq("g", ""))
	h.do("a", joinReq("g", aid))
	bid := h.joinResp(b).MemberID
	leader := h.group("g").leader
	follower := aid
	if leader == aid {
		follower = bid
	}
	fs := h.do("f", syncReq("g", follower, 2, nil))
	if h.answered(fs) {
		t.Fatal("follower answered before the leader's assignment")
	}
	h.do("l", syncReq("g", leader, 2, map[string]string{follower: "F"}))
	h.flush(nil)
	if s := h.syncResp(fs); string(s.MemberAssignment) != "F" {
		t.Fatalf("follower got %q", s.MemberAssignment)
	}
}
