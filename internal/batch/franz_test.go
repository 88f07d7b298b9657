package batch

// Cross-checks against franz-go, an independent implementation of the
// format: its kmsg encoding of batches and records, its compressors and
// decompressors, and the bytes its producer actually puts on the wire.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// kmsgBatch encodes records with kmsg, the way franz-go would.
func kmsgBatch(t *testing.T, attrs int16, recs []kmsg.Record, compress func([]byte) []byte) []byte {
	t.Helper()
	var raw []byte
	for i := range recs {
		r := &recs[i]
		// Length counts the bytes after itself; encoded with Length 0 its
		// varint takes one byte.
		r.Length = 0
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		raw = r.AppendTo(raw)
	}
	if compress != nil {
		raw = compress(raw)
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          100,
		PartitionLeaderEpoch: 7,
		Magic:                2,
		Attributes:           attrs,
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       1_600_000_000_000,
		MaxTimestamp:         1_600_000_000_999,
		ProducerID:           12,
		ProducerEpoch:        1,
		FirstSequence:        30,
		NumRecords:           int32(len(recs)),
		Records:              raw,
	}
	rb.Length = int32(len(rb.AppendTo(nil)) - 12)
	b := rb.AppendTo(nil)
	rb.CRC = int32(crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return rb.AppendTo(nil)
}

func varintLen(v int32) int { return len(binary.AppendVarint(nil, int64(v))) }

func kmsgRecords(n int) []kmsg.Record {
	recs := make([]kmsg.Record, n)
	for i := range recs {
		recs[i] = kmsg.Record{
			TimestampDelta64: int64(i * 111),
			OffsetDelta:      int32(i),
			Value:            fmt.Appendf(nil, "value %d %s", i, bytes.Repeat([]byte("x"), i*50)),
		}
		if i%2 == 0 {
			recs[i].Key = fmt.Appendf(nil, "k%d", i)
			recs[i].Headers = []kmsg.Header{{Key: "h", Value: []byte(strconv.Itoa(i))}, {Key: "n"}}
		}
	}
	return recs
}

func checkAgainstKmsg(t *testing.T, b []byte, recs []kmsg.Record) {
	t.Helper()
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatal(err)
	}
	h, err := Validate(b)
	if err != nil {
		t.Fatalf("Validate of kmsg's batch: %v", err)
	}
	want := Header{
		BaseOffset: rb.FirstOffset, Length: rb.Length, PartitionLeaderEpoch: rb.PartitionLeaderEpoch,
		Magic: rb.Magic, CRC: uint32(rb.CRC), Attributes: rb.Attributes, LastOffsetDelta: rb.LastOffsetDelta,
		BaseTimestamp: rb.FirstTimestamp, MaxTimestamp: rb.MaxTimestamp, ProducerID: rb.ProducerID,
		ProducerEpoch: rb.ProducerEpoch, BaseSequence: rb.FirstSequence, NumRecords: rb.NumRecords,
	}
	if h != want {
		t.Fatalf("header\n ours %+v\nkmsg %+v", h, want)
	}
	i := 0
	err = Records(b, func(r *Record) error {
		k := &recs[i]
		if r.OffsetDelta != k.OffsetDelta || r.TimestampDelta != k.TimestampDelta64 ||
			!bytes.Equal(r.Key, k.Key) || r.KeyNull != (k.Key == nil) ||
			!bytes.Equal(r.Value, k.Value) || r.ValueNull != (k.Value == nil) || len(r.Headers) != len(k.Headers) {
			return fmt.Errorf("record %d: ours %+v kmsg %+v", i, *r, *k)
		}
		for j, h := range r.Headers {
			if string(h.Key) != k.Headers[j].Key || !bytes.Equal(h.Value, k.Headers[j].Value) || h.ValueNull != (k.Headers[j].Value == nil) {
				return fmt.Errorf("record %d header %d: ours %+v kmsg %+v", i, j, h, k.Headers[j])
			}
		}
		i++
		return nil
	})
	if err != nil || i != len(recs) {
		t.Fatalf("Records after %d of %d: %v", i, len(recs), err)
	}
}

// kgoCodec maps our codecs to kgo's.
func kgoCodec(c Codec) kgo.CompressionCodec {
	switch c {
	case CodecGzip:
		return kgo.GzipCompression()
	case CodecSnappy:
		return kgo.SnappyCompression()
	case CodecLZ4:
		return kgo.Lz4Compression()
	case CodecZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

func TestKmsgBatchesParse(t *testing.T) {
	recs := kmsgRecords(9)
	b := kmsgBatch(t, 0x10, recs, nil) // transactional, uncompressed
	checkAgainstKmsg(t, b, recs)

	// Compressed by kgo's own compressor (for snappy that is a raw block,
	// not the xerial framing we write).
	for _, codec := range allCodecs[1:] {
		comp, err := kgo.DefaultCompressor(kgoCodec(codec))
		if err != nil {
			t.Fatal(err)
		}
		b := kmsgBatch(t, int16(codec), recs, func(raw []byte) []byte {
			out, used := comp.Compress(new(bytes.Buffer), raw)
			if used != kgo.CompressionCodecType(codec) {
				t.Fatalf("kgo compressed with %v, want %v", used, codec)
			}
			return bytes.Clone(out)
		})
		checkAgainstKmsg(t, b, recs)
	}
}

// Our batches parse with kmsg, and our compression decompresses with
// kgo's decompressor.
func TestBuildParsesWithKmsg(t *testing.T) {
	recs := testRecords(9, 30, 3000)
	dec := kgo.DefaultDecompressor()
	for _, codec := range allCodecs {
		b := mustBuild(t, codec, recs, BuildOptions{Idempotent: true, ProducerID: 3, ProducerEpoch: 2, BaseSequence: 100})
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatalf("%v: kmsg: %v", codec, err)
		}
		if rb.NumRecords != 30 || rb.ProducerID != 3 || rb.FirstSequence != 100 || rb.Attributes != int16(codec) || rb.Length != int32(len(b)-12) {
			t.Fatalf("%v: kmsg sees %+v", codec, rb)
		}
		raw, err := dec.Decompress(rb.Records, kgo.CompressionCodecType(codec))
		if err != nil {
			t.Fatalf("%v: kgo decompress: %v", codec, err)
		}
		for i := range recs {
			var kr kmsg.Record
			if err := kr.ReadFrom(raw); err != nil {
				t.Fatalf("%v: kmsg record %d: %v", codec, i, err)
			}
			raw = raw[varintLen(kr.Length)+int(kr.Length):]
			in := &recs[i]
			if kr.OffsetDelta != int32(i) || kr.TimestampDelta64 != in.TimestampDelta ||
				!bytes.Equal(kr.Key, in.Key) || (kr.Key == nil) != (in.Key == nil) ||
				!bytes.Equal(kr.Value, in.Value) || (kr.Value == nil) != (in.Value == nil || in.ValueNull) ||
				len(kr.Headers) != len(in.Headers) {
				t.Fatalf("%v: record %d: kmsg %+v ours %+v", codec, i, kr, *in)
			}
		}
		if len(raw) != 0 {
			t.Fatalf("%v: %d bytes after the records", codec, len(raw))
		}
	}
}

// fakeBroker speaks just enough of the protocol (ApiVersions, Metadata,
// Produce) for a kgo producer, and keeps the record sets it is sent.
type fakeBroker struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	sets [][]byte
	next int64
}

func newFakeBroker(t *testing.T) *fakeBroker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBroker{ln: ln}
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.wg.Go(func() {
				defer c.Close()
				if err := f.serve(c); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
					t.Errorf("fake broker: %v", err)
				}
			})
		}
	})
	return f
}

func (f *fakeBroker) close() {
	f.ln.Close()
	f.wg.Wait()
}

func (f *fakeBroker) serve(c net.Conn) error {
	be := binary.BigEndian
	for range 1000 {
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return err
		}
		buf := make([]byte, be.Uint32(size[:]))
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		key, version, corr := int16(be.Uint16(buf)), int16(be.Uint16(buf[2:])), be.Uint32(buf[4:])
		pos := 10 + max(int(int16(be.Uint16(buf[8:]))), 0) // client id
		req := kmsg.RequestForKey(key)
		if req == nil {
			return fmt.Errorf("unknown key %d", key)
		}
		req.SetVersion(version)
		if req.IsFlexible() {
			n, k := binary.Uvarint(buf[pos:]) // header tags; kgo sends none
			if n != 0 {
				return fmt.Errorf("unexpected header tags")
			}
			pos += k
		}
		if err := req.ReadFrom(buf[pos:]); err != nil {
			return fmt.Errorf("key %d v%d: %w", key, version, err)
		}
		resp, err := f.handle(req)
		if err != nil {
			return err
		}
		out := be.AppendUint32(nil, 0)
		out = be.AppendUint32(out, corr)
		if resp.IsFlexible() && key != 18 { // ApiVersions answers with header v0
			out = append(out, 0)
		}
		out = resp.AppendTo(out)
		be.PutUint32(out, uint32(len(out)-4))
		if _, err := c.Write(out); err != nil {
			return err
		}
	}
	return errors.New("too many requests")
}

func (f *fakeBroker) handle(req kmsg.Request) (kmsg.Response, error) {
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range []struct{ key, min, max int16 }{{0, 3, 9}, {3, 0, 9}, {18, 0, 3}} {
			v := kmsg.NewApiVersionsResponseApiKey()
			v.ApiKey, v.MinVersion, v.MaxVersion = k.key, k.min, k.max
			resp.ApiKeys = append(resp.ApiKeys, v)
		}
		return resp, nil
	case *kmsg.MetadataRequest:
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		host, port, _ := net.SplitHostPort(f.ln.Addr().String())
		p, _ := strconv.Atoi(port)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 0, host, int32(p)
		resp.Brokers = append(resp.Brokers, b)
		tp := kmsg.NewMetadataResponseTopic()
		tp.Topic = kmsg.StringPtr("t")
		pt := kmsg.NewMetadataResponseTopicPartition()
		pt.Replicas, pt.ISR = []int32{0}, []int32{0}
		tp.Partitions = append(tp.Partitions, pt)
		resp.Topics = append(resp.Topics, tp)
		return resp, nil
	case *kmsg.ProduceRequest:
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, tp := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = tp.Topic
			for _, p := range tp.Partitions {
				f.sets = append(f.sets, bytes.Clone(p.Records))
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition, rp.BaseOffset = p.Partition, f.next
				for it := NewIter(p.Records); it.Next(); {
					f.next += int64(it.Header().LastOffsetDelta) + 1
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	}
	return nil, fmt.Errorf("unexpected request %T", req)
}

// TestKgoProducerBytes checks our parser against what a real franz-go
// producer writes, for every codec: its compressors (raw snappy blocks, not
// the Java client's xerial framing, which TestXerialGolden covers), its
// record encoding and its batch headers.
func TestKgoProducerBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a client and a fake broker")
	}
	for _, codec := range allCodecs {
		t.Run(codec.String(), func(t *testing.T) {
			f := newFakeBroker(t)
			defer f.close()
			cl, err := kgo.NewClient(
				kgo.SeedBrokers(f.ln.Addr().String()),
				kgo.DefaultProduceTopic("t"),
				kgo.DisableIdempotentWrite(),
				kgo.ProducerBatchCompression(kgoCodec(codec)),
				kgo.RecordPartitioner(kgo.ManualPartitioner()),
				kgo.ProducerLinger(50*time.Millisecond),
			)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()

			base := time.UnixMilli(1_650_000_000_000)
			var sent []*kgo.Record
			for i := range 200 {
				r := &kgo.Record{
					Value:     fmt.Appendf(nil, "v%d-%s", i, bytes.Repeat([]byte{'z'}, i*20)),
					Timestamp: base.Add(time.Duration(i) * time.Millisecond),
				}
				if i%3 != 0 {
					r.Key = fmt.Appendf(nil, "k%d", i)
				}
				if i%5 == 0 {
					r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte("hv")}}
				}
				sent = append(sent, r)
			}
			if err := cl.ProduceSync(ctx, sent...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			cl.Close()

			f.mu.Lock()
			defer f.mu.Unlock()
			i := 0
			for _, set := range f.sets {
				it := NewIter(set)
				for it.Next() {
					h, err := Validate(it.Batch())
					if err != nil {
						t.Fatalf("Validate of kgo's batch: %v", err)
					}
					if h.Codec() != codec {
						t.Fatalf("kgo batch codec %v, want %v", h.Codec(), codec)
					}
					err = Records(it.Batch(), func(r *Record) error {
						if i >= len(sent) {
							return errors.New("more records than sent")
						}
						s := sent[i]
						if !bytes.Equal(r.Key, s.Key) || r.KeyNull != (s.Key == nil) || !bytes.Equal(r.Value, s.Value) ||
							h.BaseTimestamp+r.TimestampDelta != s.Timestamp.UnixMilli() || len(r.Headers) != len(s.Headers) {
							return fmt.Errorf("record %d: got %+v, sent %+v", i, *r, *s)
						}
						i++
						return nil
					})
					if err != nil {
						t.Fatal(err)
					}
				}
				if it.Err() != nil {
					t.Fatal(it.Err())
				}
			}
			if i != len(sent) {
				t.Fatalf("decoded %d of %d records", i, len(sent))
			}
		})
	}
}
