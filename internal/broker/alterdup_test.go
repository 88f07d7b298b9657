package broker_test

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

// A resource named twice in one alter request is refused, both times, with
// INVALID_REQUEST; a resource named once in the same request goes through.
func TestAlterConfigsDuplicateResource(t *testing.T) {
	b := brokertest.Start(t)
	ctx := context.Background()
	adm := b.Admin(t)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "dup"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "once"); err != nil {
		t.Fatal(err)
	}
	cl := b.Client(t)
	topic := func(name string) (kmsg.ConfigResourceType, string) { return kmsg.ConfigResourceTypeTopic, name }

	inc := kmsg.NewPtrIncrementalAlterConfigsRequest()
	alt := kmsg.NewPtrAlterConfigsRequest()
	for _, name := range []string{"dup", "once", "dup"} {
		rt, rn := topic(name)
		ir := kmsg.NewIncrementalAlterConfigsRequestResource()
		ir.ResourceType, ir.ResourceName = rt, rn
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("3600000")
		ir.Configs = append(ir.Configs, c)
		inc.Resources = append(inc.Resources, ir)

		ar := kmsg.NewAlterConfigsRequestResource()
		ar.ResourceType, ar.ResourceName = rt, rn
		ac := kmsg.NewAlterConfigsRequestResourceConfig()
		ac.Name, ac.Value = "retention.ms", kmsg.StringPtr("3600000")
		ar.Configs = append(ar.Configs, ac)
		alt.Resources = append(alt.Resources, ar)
	}
	check := func(api string, names []string, codes []int16) {
		t.Helper()
		for i, name := range names {
			want := int16(0)
			if name == "dup" {
				want = kerr.InvalidRequest.Code
			}
			if codes[i] != want {
				t.Errorf("%s %s: error code %d, want %d", api, name, codes[i], want)
			}
		}
	}
	iresp, err := inc.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var codes []int16
	for _, r := range iresp.Resources {
		names, codes = append(names, r.ResourceName), append(codes, r.ErrorCode)
	}
	check("IncrementalAlterConfigs", names, codes)
	aresp, err := alt.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	names, codes = nil, nil
	for _, r := range aresp.Resources {
		names, codes = append(names, r.ResourceName), append(codes, r.ErrorCode)
	}
	check("AlterConfigs", names, codes)
}
