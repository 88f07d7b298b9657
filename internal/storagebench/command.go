package storagebench

import (
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

// Command is `sluice bench storage`.
func Command() *cobra.Command {
	var (
		dir                                      string
		bytes, headline, tail                    string
		batches, partitions, appenders, recovery string
		latency                                  bool
	)
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Measure the storage engine against raw write+fdatasync on the same disk",
		Long: `Measures, in one run and on the filesystem holding --dir: the raw
sequential write+fdatasync baseline per chunk size; acknowledged (fsynced)
append throughput for each partition count, batch size and appender count;
append latency at a quarter of peak rate; and recovery time of logs with an
unflushed tail. Prints markdown tables.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o := Options{Dir: dir, Latency: latency, Out: cmd.OutOrStdout()}
			var err error
			if o.Bytes, err = parseSize(bytes); err != nil {
				return err
			}
			if o.Headline, err = parseSize(headline); err != nil {
				return err
			}
			if o.TailBytes, err = parseSize(tail); err != nil {
				return err
			}
			if o.Batches, err = parseInts(batches); err != nil {
				return err
			}
			if o.Partitions, err = parseInts(partitions); err != nil {
				return err
			}
			if o.Appenders, err = parseInts(appenders); err != nil {
				return err
			}
			if recovery != "" {
				for _, s := range strings.Split(recovery, ",") {
					n, err := parseSize(s)
					if err != nil {
						return err
					}
					o.Recovery = append(o.Recovery, n)
				}
			}
			defer os.RemoveAll(dir)
			return Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "sluice-bench-storage", "scratch directory (removed afterwards)")
	f.StringVar(&bytes, "bytes", "512MiB", "bytes written per throughput cell")
	f.StringVar(&batches, "batch", "16KiB,1MiB", "batch sizes")
	f.StringVar(&partitions, "partitions", "1,100,10000", "partition counts")
	f.StringVar(&appenders, "appenders", "1,8,64", "concurrent appenders")
	f.StringVar(&headline, "long", "4GiB", "bytes of the long run (0 skips it)")
	f.StringVar(&recovery, "recovery", "1GiB,10GiB", "log sizes for recovery runs (empty skips)")
	f.StringVar(&tail, "tail", "64MiB", "unflushed tail of the recovery runs")
	f.BoolVar(&latency, "latency", true, "run the fixed-rate latency test")
	return cmd
}

func parseInts(s string) ([]int, error) {
	var out []int
	if strings.TrimSpace(s) == "" {
		return nil, nil // skip that part
	}
	for _, p := range strings.Split(s, ",") {
		n, err := parseSize(p)
		if err != nil {
			return nil, err
		}
		out = append(out, int(n))
	}
	return out, nil
}

// parseSize reads 512, 16KiB, 1MiB, 4GiB.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for suf, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suf) {
			s, mult = strings.TrimSuffix(s, suf), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}
