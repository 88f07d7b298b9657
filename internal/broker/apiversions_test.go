package broker_test

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/broker/brokertest"
)

func TestApiVersions(t *testing.T) {
	b := brokertest.Start(t)
	rc := dialRaw(t, b.Addr())
	for _, v := range []int16{0, 3, 4} {
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = v
		req.ClientSoftwareName, req.ClientSoftwareVersion = "sluice-test", "1.0"
		resp := rc.do(req).(*kmsg.ApiVersionsResponse)
		if resp.ErrorCode != 0 {
			t.Fatalf("v%d: %v", v, kerr.ErrorForCode(resp.ErrorCode))
		}
		got := map[int16][2]int16{}
		for _, k := range resp.ApiKeys {
			mn, mx, ok := b.Versions(k.ApiKey)
			if !ok || mn != k.MinVersion || mx != k.MaxVersion {
				t.Fatalf("v%d advertises %s %d-%d, the handler table says %d-%d (%v)", v, kmsg.NameForKey(k.ApiKey), k.MinVersion, k.MaxVersion, mn, mx, ok)
			}
			got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		for _, key := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.Metadata, kmsg.ListOffsets, kmsg.CreateTopics, kmsg.DescribeConfigs} {
			if _, ok := got[int16(key)]; !ok {
				t.Fatalf("v%d: %s not advertised", v, kmsg.NameForKey(int16(key)))
			}
		}
		for _, key := range []kmsg.Key{kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.OffsetCommit, kmsg.InitProducerID, kmsg.EndTxn} {
			if _, ok := got[int16(key)]; !ok {
				t.Fatalf("v%d: %s not advertised", v, kmsg.NameForKey(int16(key)))
			}
		}
	}
	// A bad client software name is INVALID_REQUEST (v3+).
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "-bad-", "1"
	if resp := rc.do(req).(*kmsg.ApiVersionsResponse); !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.InvalidRequest) {
		t.Fatalf("bad software name: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

// An ApiVersions at a version we do not know gets UNSUPPORTED_VERSION in a
// v0 response carrying our ApiVersions range (KIP-511).
func TestApiVersionsUnsupportedVersion(t *testing.T) {
	b := brokertest.Start(t)
	rc := dialRaw(t, b.Addr())
	frame := []byte{0, 0, 0, 0, 0, 18, 0, 99, 0, 0, 0, 7, 0xff, 0xff, 0, 1, 2, 3}
	frame[3] = byte(len(frame) - 4)
	if _, err := rc.c.Write(frame); err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrApiVersionsRequest() // decodes the answer at v0
	resp := rc.recv(req, 7).(*kmsg.ApiVersionsResponse)
	if !errors.Is(kerr.ErrorForCode(resp.ErrorCode), kerr.UnsupportedVersion) || len(resp.ApiKeys) != 1 || resp.ApiKeys[0].ApiKey != 18 {
		t.Fatalf("answer: %+v", resp)
	}
}

// TestKcat runs librdkafka's kcat against the broker when it is installed.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed")
	}
	b := brokertest.Start(t)
	run := func(stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcat, append([]string{"-b", b.Addr()}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	if out := run("", "-L"); !strings.Contains(out, "1 brokers") {
		t.Fatalf("kcat -L:\n%s", out)
	}
	run("k1:one\nk2:two\nk3:three\n", "-P", "-t", "kc", "-K:", "-z", "zstd")
	out := run("", "-C", "-t", "kc", "-o", "beginning", "-e", "-f", "%k=%s\n")
	if out != "k1=one\nk2=two\nk3=three\n" {
		t.Fatalf("kcat consumed:\n%q", out)
	}
}
