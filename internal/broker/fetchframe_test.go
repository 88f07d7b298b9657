package broker

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/server"
)

// TestFetchFrameMatchesKmsg checks the hand-written Fetch framing against
// kmsg's own encoding: for many random responses and every version we
// serve, the frame with its file ranges inlined must equal
// FetchResponse.AppendTo byte for byte.
func TestFetchFrameMatchesKmsg(t *testing.T) {
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	content := make([]byte, 1<<16)
	for i := range content {
		content[i] = byte(rng.IntN(256))
	}
	if _, err := f.Write(content); err != nil {
		t.Fatal(err)
	}
	h := handlers[int16(kmsg.Fetch)]
	for version := h.min; version <= h.max; version++ {
		for iter := 0; iter < 200; iter++ {
			errCode := int16(0)
			if rng.IntN(5) == 0 {
				errCode = int16(rng.IntN(120))
			}
			sessionID := rng.Int32()
			var topics []frameTopic
			for ti := rng.IntN(4); ti > 0; ti-- {
				var ft frameTopic
				// Names long enough to need multi-byte lengths.
				ft.name = strings.Repeat(string(rune('a'+rng.IntN(26))), rng.IntN(300))
				for i := range ft.id {
					ft.id[i] = byte(rng.IntN(256))
				}
				for pi := rng.IntN(5); pi > 0; pi-- {
					fp := framePart{
						partition: rng.Int32(), errCode: int16(rng.IntN(100)),
						hw: rng.Int64(), lso: rng.Int64(), logStart: rng.Int64(),
					}
					if rng.IntN(2) == 0 {
						fp.committed = true
						for range rng.IntN(4) {
							fp.aborted = append(fp.aborted, abortedTxn{rng.Int64(), rng.Int64()})
						}
					}
					switch rng.IntN(3) {
					case 0: // empty
					case 1:
						fp.records = content[:rng.IntN(300)]
					case 2:
						fp.pos = int64(rng.IntN(len(content)))
						fp.n = int64(rng.IntN(len(content) - int(fp.pos)))
						fp.file = f
					}
					ft.parts = append(ft.parts, fp)
				}
				topics = append(topics, ft)
			}
			got := inline(t, fetchFrame(version, errCode, sessionID, topics))
			want := kmsgFetch(version, errCode, sessionID, topics, content).AppendTo(nil)
			if !bytes.Equal(got, want) {
				t.Fatalf("seed %d v%d iter %d: frame differs from kmsg\n got %x\nwant %x", seed, version, iter, got, want)
			}
			// And kmsg reads it back.
			resp := kmsg.NewPtrFetchResponse()
			resp.Version = version
			if err := resp.ReadFrom(got); err != nil {
				t.Fatalf("v%d: kmsg cannot read the frame: %v", version, err)
			}
		}
	}
}

func inline(t *testing.T, parts []server.Part) []byte {
	var out []byte
	for _, p := range parts {
		if p.File == nil {
			out = append(out, p.Bytes...)
			continue
		}
		b := make([]byte, p.Length)
		if _, err := p.File.ReadAt(b, p.Offset); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func kmsgFetch(version, errCode int16, sessionID int32, topics []frameTopic, content []byte) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.Version = version
	resp.ErrorCode = errCode
	resp.SessionID = sessionID
	for _, ft := range topics {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = ft.name, ft.id
		for _, fp := range ft.parts {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition, rp.ErrorCode = fp.partition, fp.errCode
			rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = fp.hw, fp.lso, fp.logStart
			if fp.committed {
				rp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
				for _, a := range fp.aborted {
					at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
					at.ProducerID, at.FirstOffset = a.producerID, a.firstOffset
					rp.AbortedTransactions = append(rp.AbortedTransactions, at)
				}
			}
			rp.RecordBatches = []byte{}
			if fp.file != nil {
				rp.RecordBatches = content[fp.pos : fp.pos+fp.n]
			} else if fp.records != nil {
				rp.RecordBatches = fp.records
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

func TestFetchFrameVersionsCovered(t *testing.T) {
	h := handlers[int16(kmsg.Fetch)]
	if h.max > kmsg.NewPtrFetchResponse().MaxVersion() {
		t.Fatalf("Fetch v%d advertised, kmsg knows v%d", h.max, kmsg.NewPtrFetchResponse().MaxVersion())
	}
}

// The metrics cannot look inside a pre-encoded fetch: frameResponse lists
// the error codes it wrote, once each, and none for clean partitions.
func TestFrameResponseErrorCodes(t *testing.T) {
	topics := []frameTopic{
		{name: "a", parts: []framePart{{partition: 0, errCode: kerr.OffsetOutOfRange.Code}, {partition: 1}}},
		{name: "b", parts: []framePart{{partition: 0, errCode: kerr.UnknownTopicOrPartition.Code}}},
	}
	resp := frameResponse(12, 0, 0, topics)
	if want := []int16{kerr.OffsetOutOfRange.Code, kerr.UnknownTopicOrPartition.Code}; !slices.Equal(resp.ErrorCodes, want) {
		t.Fatalf("codes %v, want %v", resp.ErrorCodes, want)
	}
	if resp := frameResponse(12, kerr.FetchSessionIDNotFound.Code, 0, nil); !slices.Equal(resp.ErrorCodes, []int16{kerr.FetchSessionIDNotFound.Code}) {
		t.Fatalf("top-level code: %v", resp.ErrorCodes)
	}
	if resp := frameResponse(12, 0, 0, topics[:0]); resp.ErrorCodes != nil {
		t.Fatalf("clean response lists %v", resp.ErrorCodes)
	}
}
