package storage

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/batch"
	"github.com/sluice-io/sluice/internal/partition"
	"github.com/sluice-io/sluice/internal/vfs"
)

// The kill -9 test runs this test binary again as a child that appends
// with real fsyncs and prints each acknowledgement; the parent kills it
// without warning, reopens the directory and checks every acknowledged
// batch is there.
const killChildEnv = "SLUICE_STORAGE_KILL_CHILD"

func killOptions(dir string) Options {
	o := testOptions(vfs.Default)
	o.Dir = dir
	o.WAL.FileBytes = 1 << 20
	o.CheckpointBytes = 512 << 10
	return o
}

// killBatch is batch i, the same in parent and child.
func killBatch(t testing.TB, i int) []byte {
	return mkBatch(t, rand.New(rand.NewPCG(uint64(i), 42)), int64(i))
}

func TestKillChild(t *testing.T) {
	dir := os.Getenv(killChildEnv)
	if dir == "" {
		t.Skip("run by TestKill9")
	}
	e, _, err := Open(killOptions(dir))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	var parts []*partition.Partition
	for i := 0; i < 4; i++ {
		id := partition.ID{Topic: "k", TopicID: topicID(9), Partition: int32(i)}
		p := e.Partition(id.TopicID, id.Partition)
		if p == nil {
			if p, err = e.CreatePartition(id, e.opts.Partition); err != nil {
				fmt.Println("ERR", err)
				os.Exit(1)
			}
		}
		parts = append(parts, p)
	}
	out := bufio.NewWriter(os.Stdout)
	start, _ := strconv.Atoi(os.Getenv(killChildEnv + "_START"))
	type ack struct {
		part, i int
		base    int64
	}
	acks := make(chan ack, 1024)
	go func() {
		for a := range acks {
			fmt.Fprintf(out, "ACK %d %d %d\n", a.part, a.i, a.base)
			out.Flush()
		}
	}()
	// Several appenders at once, so acknowledgements come from shared
	// group commits.
	sem := make(chan struct{}, 16)
	for i := start; ; i++ {
		sem <- struct{}{}
		part, b := i%len(parts), killBatch(t, i)
		i := i
		if _, err := e.Append(context.Background(), parts[part], b, func(base int64, err error) {
			if err == nil {
				acks <- ack{part, i, base}
			}
			<-sem
		}); err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
	}
}

func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	acked := map[[2]int64]int{} // (partition, base) -> batch number
	next := 0
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), killChildEnv+"="+dir, fmt.Sprintf("%s_START=%d", killChildEnv, next))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		want := 200 + rand.IntN(600)
		sc := bufio.NewScanner(stdout)
		n := 0
		deadline := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 4 || f[0] != "ACK" {
				t.Fatalf("child said %q", sc.Text())
			}
			part, _ := strconv.Atoi(f[1])
			i, _ := strconv.Atoi(f[2])
			base, _ := strconv.ParseInt(f[3], 10, 64)
			acked[[2]int64{int64(part), base}] = i
			next = max(next, i+1)
			if n++; n == want {
				cmd.Process.Signal(syscall.SIGKILL)
			}
		}
		deadline.Stop()
		cmd.Wait()
		if n < want {
			t.Fatalf("round %d: child stopped after %d acks", round, n)
		}
		next += 1000 // batch numbers of the killed run's unacknowledged appends are not reused
		e, rep, err := Open(killOptions(dir))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d acked in total; recovery %+v", round, len(acked), rep)
		got := map[[2]int64][]byte{}
		for _, p := range e.Partitions() {
			batches, _, _ := readLog(t, p)
			for base, b := range batches {
				got[[2]int64{int64(p.ID().Partition), base}] = b
			}
		}
		for k, i := range acked {
			want := killBatch(t, i)
			batch.SetBaseOffset(want, k[1])
			if !bytes.Equal(got[k], want) {
				t.Fatalf("round %d: acknowledged batch %d at partition %d offset %d lost or changed", round, i, k[0], k[1])
			}
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
