// Package offsite measures a backup written to the local disk, to a real
// S3 server (versitygw on loopback) and over SFTP (an SSH server in this
// process), one at a time and fanned out to all three:
//
//	go test -run '^$' -bench . -benchtime 3x ./bench/offsite/
//
// Each case backs up 256 MiB of SQL text with zstd in 64 MiB parts and
// reports MB/s of dump and the process's peak RSS (VmHWM, which includes
// the in-process SSH server's buffers: an upper bound for DataGuardian).
package offsite

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/internal/sqltext"
	"github.com/dataguardian/dataguardian/internal/testsvc"
	"github.com/dataguardian/dataguardian/manifest"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/local"
	"github.com/dataguardian/dataguardian/storage/s3"
	"github.com/dataguardian/dataguardian/storage/sftp"
)

const size = 256 << 20

func BenchmarkDestinations(b *testing.B) {
	srv := testsvc.StartS3(b)
	bucket := srv.NewBucket(b)
	ssh := testsvc.StartSFTP(b)
	ctx := context.Background()
	disk, err := local.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	bucketSt, err := s3.New(ctx, s3.Config{Endpoint: srv.Endpoint, Bucket: bucket, AccessKeyID: srv.AccessKey,
		SecretAccessKey: srv.SecretKey, PathStyle: true})
	if err != nil {
		b.Fatal(err)
	}
	sshSt, err := sftp.New(ctx, sftp.Config{Host: ssh.Host, Port: ssh.Port, User: ssh.User, Password: ssh.Password,
		HostKey: ssh.HostKey, Path: ssh.Dir + "/backups"})
	if err != nil {
		b.Fatal(err)
	}
	block := sqltext.Block(1, 16<<20)
	for _, c := range []struct {
		name  string
		dests []manifest.Destination
	}{
		{"local", []manifest.Destination{{Name: "local", Storage: disk}}},
		{"s3", []manifest.Destination{{Name: "s3", Storage: bucketSt}}},
		{"sftp", []manifest.Destination{{Name: "sftp", Storage: sshSt}}},
		{"local+s3+sftp", []manifest.Destination{{Name: "local", Storage: disk}, {Name: "s3", Storage: bucketSt}, {Name: "sftp", Storage: sshSt}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				res, err := manifest.Write(ctx, c.dests, manifest.WriteOptions{JobID: "bench", DatasourceType: "mysql",
					Compression: manifest.Zstd, PartSize: 64 << 20},
					func(ctx context.Context, w io.Writer) (manifest.Metadata, error) {
						_, err := io.Copy(w, sqltext.Repeat(block, size))
						return manifest.Metadata{}, err
					})
				if err != nil {
					b.Fatal(err)
				}
				for _, d := range res.Destinations {
					if d.Err != nil {
						b.Fatalf("%s: %v", d.Name, d.Err)
					}
				}
				for _, d := range c.dests {
					cleanup(b, d.Storage, res.Dir)
				}
			}
			b.ReportMetric(peakRSSMiB(b), "peak-RSS-MiB")
		})
	}
}

func cleanup(b *testing.B, s storage.Storage, dir string) {
	objs, err := s.List(context.Background(), dir+"/")
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range objs {
		if err := s.Delete(context.Background(), o.Key); err != nil {
			b.Fatal(err)
		}
	}
}

// peakRSSMiB is the process's peak resident set (VmHWM) in MiB.
func peakRSSMiB(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
