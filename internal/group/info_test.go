package group

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func consumerAssignment(topics map[string][]int32) string {
	var a kmsg.ConsumerMemberAssignment
	for t, ps := range topics {
		a.Topics = append(a.Topics, kmsg.ConsumerMemberAssignmentTopic{Topic: t, Partitions: ps})
	}
	return string(a.AppendTo(nil))
}

// A classic "consumer" group's members carry their client, instance id and
// decoded assignment; bytes that do not decode and other protocol types
// give no assignment.
func TestGroupInfoClassicMembers(t *testing.T) {
	h := newHarness(t, nil)
	// The first member's join completes a generation at once; the
	// second's starts another, which a completes by rejoining.
	a := h.do("app-a", joinReq("g", "", withInstance("static-a")))
	b := h.do("app-b", joinReq("g", ""))
	a = h.do("app-a", joinReq("g", h.joinResp(a).MemberID, withInstance("static-a")))
	ja, jb := h.joinResp(a), h.joinResp(b)
	gen := ja.Generation
	leader := h.group("g").leader
	assign := map[string]string{
		ja.MemberID: consumerAssignment(map[string][]int32{"payments": {0}, "orders": {2, 0}}),
		jb.MemberID: "not an assignment",
	}
	var syncs []*call
	for _, id := range []string{ja.MemberID, jb.MemberID} {
		if id == leader {
			syncs = append(syncs, h.do("c", syncReq("g", id, gen, assign)))
		} else {
			syncs = append(syncs, h.do("c", syncReq("g", id, gen, nil)))
		}
	}
	h.flush(nil)
	for _, c := range syncs {
		if code := h.syncResp(c).ErrorCode; code != 0 {
			t.Fatalf("sync: %d", code)
		}
	}
	infos := h.st.infos()
	if len(infos) != 1 {
		t.Fatalf("infos %+v", infos)
	}
	gi := infos[0]
	if gi.Members != 2 || len(gi.MemberList) != 2 || gi.ProtocolType != "consumer" || gi.Protocol != "range" || gi.Generation != gen {
		t.Fatalf("group info %+v", gi)
	}
	byID := map[string]MemberInfo{}
	for _, m := range gi.MemberList {
		byID[m.ID] = m
	}
	if gi.MemberList[0].ID > gi.MemberList[1].ID {
		t.Errorf("members not sorted by id: %+v", gi.MemberList)
	}
	wantA := MemberInfo{ID: ja.MemberID, InstanceID: "static-a", ClientID: "app-a", Host: "/10.0.0.1",
		Assigned: []TopicPartitions{{"orders", []int32{0, 2}}, {"payments", []int32{0}}}}
	if got := byID[ja.MemberID]; !reflect.DeepEqual(got, wantA) {
		t.Errorf("member a %+v, want %+v", got, wantA)
	}
	if got := byID[jb.MemberID]; got.ClientID != "app-b" || got.InstanceID != "" || got.Assigned != nil {
		t.Errorf("member b (undecodable assignment) %+v", got)
	}

	// Another protocol type: the bytes are not a consumer assignment.
	c := h.do("connect", joinReq("w", "", withProtocolType("connect")))
	jc := h.joinResp(c)
	s := h.do("c", syncReq("w", jc.MemberID, jc.Generation, map[string]string{
		jc.MemberID: consumerAssignment(map[string][]int32{"orders": {1}}),
	}))
	h.flush(nil)
	if code := h.syncResp(s).ErrorCode; code != 0 {
		t.Fatalf("sync: %d", code)
	}
	for _, gi := range h.st.infos() {
		if gi.ID == "w" && (len(gi.MemberList) != 1 || gi.MemberList[0].Assigned != nil || gi.ProtocolType != "connect") {
			t.Errorf("connect group %+v", gi)
		}
	}
}

// A KIP-848 group's members come from the state machine's describe output,
// with the client the coordinator remembered.
func TestGroupInfoConsumerMembers(t *testing.T) {
	c := loaded(t, newMemLog(), nil)
	a := &cgMember{id: "member-a", group: "cg", subs: []string{"orders"}}
	b := &cgMember{id: "member-b", group: "cg", subs: []string{"orders"}}
	a.mustBeat(t, c)
	b.mustBeat(t, c)
	converge(t, c, a, b)
	gs := c.Groups()
	if len(gs) != 1 || gs[0].Type != "consumer" || len(gs[0].MemberList) != 2 {
		t.Fatalf("groups %+v", gs)
	}
	var all []int32
	for i, m := range gs[0].MemberList {
		want := []*cgMember{a, b}[i]
		if m.ID != want.id || m.ClientID != "app" || m.Host != "/10.0.0.7" {
			t.Errorf("member %d: %+v", i, m)
		}
		if len(m.Assigned) != 1 || m.Assigned[0].Topic != "orders" || !reflect.DeepEqual(m.Assigned[0].Partitions, want.owned) {
			t.Errorf("member %s assigned %+v, owns %v", m.ID, m.Assigned, want.owned)
		}
		all = append(all, m.Assigned[0].Partitions...)
	}
	if len(all) != 3 {
		t.Errorf("assigned partitions %v, want 3", all)
	}
}
