package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/broker"
)

// The group kill -9 test runs this test binary again as a child that
// serves a broker on a data directory; the parent commits offsets through
// it, kills it without warning, starts it again on the same directory and
// checks that every acknowledged commit and the group's membership are
// still there.
const groupKillChildEnv = "SLUICE_BROKER_KILL_CHILD"

func TestGroupKillChild(t *testing.T) {
	dir := os.Getenv(groupKillChildEnv)
	if dir == "" {
		t.Skip("run by TestGroupKill9")
	}
	o := broker.Options{Dir: dir, Listen: os.Getenv(groupKillChildEnv + "_ADDR"), OffsetsTopicPartitions: 8, TxnTopicPartitions: 4}
	o.Storage.WAL.FileBytes = 4 << 20
	o.Group.InitialRebalanceDelay = -1
	b, err := broker.New(o)
	if err == nil {
		err = b.Start()
	}
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	fmt.Println("ADDR", b.Addr().String())
	select {} // until killed
}

type killChild struct {
	cmd  *exec.Cmd
	addr string
}

func startKillChild(t *testing.T, dir, addr string) *killChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestGroupKillChild$", "-test.v")
	cmd.Env = append(os.Environ(), groupKillChildEnv+"="+dir, groupKillChildEnv+"_ADDR="+addr)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &killChild{cmd: cmd}
	t.Cleanup(func() { c.kill() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if a, ok := strings.CutPrefix(line, "ADDR "); ok {
			c.addr = a
			go func() {
				for sc.Scan() {
				}
			}()
			return c
		}
		if strings.HasPrefix(line, "ERR ") {
			t.Fatalf("child: %s", line)
		}
	}
	t.Fatalf("child exited before serving: %v", sc.Err())
	return nil
}

func (c *killChild) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

// Acknowledged offset commits and group membership survive kill -9 of the
// broker process, at a random moment of a stream of commits.
func TestGroupKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills broker processes")
	}
	dir := t.TempDir()
	child := startKillChild(t, dir, "127.0.0.1:0")
	addr := child.addr
	newClient := func(opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DisableIdempotentWrite(),
			kgo.RetryTimeout(5 * time.Second)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return cl
	}
	adm := kadm.NewClient(newClient())
	if r, err := adm.CreateTopic(ctxT(t), 8, 1, nil, "kt"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	// A classic member, stable before the kill (kgo runs the group in the
	// background).
	_ = newClient(kgo.ConsumerGroup("kmember"), kgo.ConsumeTopics("kt"), kgo.SessionTimeout(30*time.Second))
	waitFor(t, 30*time.Second, "the member's group to be stable", func() bool {
		d, err := adm.DescribeGroups(ctxT(t), "kmember")
		return err == nil && d["kmember"].State == "Stable"
	})
	before, _ := adm.DescribeGroups(ctxT(t), "kmember")
	// And a KIP-848 member.
	_ = newClient(kgo.ConsumerGroup("k848"), kgo.ConsumeTopics("kt"), kgo.ServerSideBalancer())
	probe := newClient()
	waitFor(t, 30*time.Second, "the KIP-848 group to be stable", func() bool {
		return groupReady(t, probe, "k848", 1, true)
	})
	id848, epoch848, _ := describeMember(t, probe, "k848", true)

	const groups = 4
	for round := range 3 {
		// Commit increasing offsets from several groups at once; each
		// acknowledged commit is recorded.
		var mu sync.Mutex
		acked := map[string]int64{}
		sent := map[string]int64{}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for g := range groups {
			name := fmt.Sprintf("kg-%d", g)
			cl := kadm.NewClient(newClient(kgo.RetryTimeout(time.Second)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := int64(round*100000 + 1); ctx.Err() == nil; n++ {
					var os kadm.Offsets
					for p := int32(0); p < 8; p++ {
						os.Add(kadm.Offset{Topic: "kt", Partition: p, At: n, LeaderEpoch: -1})
					}
					mu.Lock()
					sent[name] = n
					mu.Unlock()
					r, err := cl.CommitOffsets(ctx, name, os)
					if err != nil || r.Error() != nil {
						return // the broker died under us
					}
					mu.Lock()
					acked[name] = n
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(300+round*200) * time.Millisecond)
		child.kill()
		cancel()
		wg.Wait()

		child = startKillChild(t, dir, addr)
		adm = kadm.NewClient(newClient()) // the old one's connections died with the broker
		mu.Lock()
		for g := range groups {
			name := fmt.Sprintf("kg-%d", g)
			if acked[name] == 0 {
				t.Fatalf("round %d: group %s had no acknowledged commit before the kill", round, name)
			}
			offs, err := adm.FetchOffsets(ctxT(t), name)
			if err != nil {
				t.Fatalf("round %d: fetch %s: %v", round, name, err)
			}
			for p := int32(0); p < 8; p++ {
				o, ok := offs.Lookup("kt", p)
				if !ok || o.At < acked[name] || o.At > sent[name] {
					t.Fatalf("round %d: %s partition %d committed %d after kill -9; acknowledged %d, last sent %d", round, name, p, o.At, acked[name], sent[name])
				}
			}
			t.Logf("round %d: %s acknowledged %d commits, all present", round, name, acked[name]-int64(round*100000))
		}
		mu.Unlock()
	}
	if id, epoch, _ := describeMember(t, newClient(), "k848", true); id != id848 || epoch < epoch848 {
		t.Fatalf("KIP-848 member after kill -9: %s epoch %d; before %s epoch %d", id, epoch, id848, epoch848)
	}
	after, err := adm.DescribeGroups(ctxT(t), "kmember")
	if err != nil {
		t.Fatal(err)
	}
	b, a := before["kmember"], after["kmember"]
	if a.Err != nil || a.Protocol != b.Protocol || len(a.Members) == 0 || a.Members[0].MemberID != b.Members[0].MemberID {
		t.Fatalf("group after kill -9: %+v; before: %+v", a, b)
	}
}
