package metrics

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func codesOf(msg kmsg.Response) []int16 {
	var got []int16
	errorCodes(msg, func(c int16) { got = append(got, c) })
	return got
}

// Every level where Kafka puts an ErrorCode is found: top level, per topic,
// per partition, per group, per resource; zero codes are not reported.
func TestErrorCodes(t *testing.T) {
	md := kmsg.NewPtrMetadataResponse()
	md.Brokers = make([]kmsg.MetadataResponseBroker, 3)
	md.Topics = []kmsg.MetadataResponseTopic{
		{ErrorCode: kerr.UnknownTopicOrPartition.Code},
		{Partitions: []kmsg.MetadataResponseTopicPartition{{ErrorCode: kerr.LeaderNotAvailable.Code}, {}}},
	}
	dg := kmsg.NewPtrDescribeGroupsResponse()
	dg.Groups = []kmsg.DescribeGroupsResponseGroup{{ErrorCode: kerr.GroupIDNotFound.Code}, {}}
	dc := kmsg.NewPtrDescribeConfigsResponse()
	dc.Resources = []kmsg.DescribeConfigsResponseResource{{ErrorCode: kerr.UnknownTopicOrPartition.Code}}
	hb := kmsg.NewPtrHeartbeatResponse()
	hb.ErrorCode = kerr.RebalanceInProgress.Code
	for _, tc := range []struct {
		msg  kmsg.Response
		want []int16
	}{
		{md, []int16{kerr.UnknownTopicOrPartition.Code, kerr.LeaderNotAvailable.Code}},
		{dg, []int16{kerr.GroupIDNotFound.Code}},
		{dc, []int16{kerr.UnknownTopicOrPartition.Code}},
		{hb, []int16{kerr.RebalanceInProgress.Code}},
		{kmsg.NewPtrApiVersionsResponse(), nil},
		{(*kmsg.FetchResponse)(nil), nil},
	} {
		if got := codesOf(tc.msg); !slices.Equal(got, tc.want) {
			t.Errorf("%T: codes %v, want %v", tc.msg, got, tc.want)
		}
	}
}

func TestErrorName(t *testing.T) {
	for code, want := range map[int16]string{
		3:    "UNKNOWN_TOPIC_OR_PARTITION",
		-1:   "UNKNOWN_SERVER_ERROR",
		2:    "CORRUPT_MESSAGE",
		9999: "code_9999",
	} {
		if got := errorName(code); got != want {
			t.Errorf("errorName(%d) = %q, want %q", code, got, want)
		}
	}
}

// The walk a produce response costs, per response.
func BenchmarkErrorCodesProduce(b *testing.B) {
	pr := kmsg.NewPtrProduceResponse()
	pr.Topics = []kmsg.ProduceResponseTopic{{Topic: "orders", Partitions: make([]kmsg.ProduceResponseTopicPartition, 4)}}
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		errorCodes(pr, func(int16) { n++ })
	}
}
