package s3_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/internal/testsvc"
	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/s3"
	"github.com/dataguardian/dataguardian/storage/storagetest"
)

func newS3(t *testing.T, srv *testsvc.S3Server, bucket, prefix string) *s3.S3 {
	t.Helper()
	st, err := s3.New(t.Context(), s3.Config{Endpoint: srv.Endpoint, Bucket: bucket, Prefix: prefix,
		AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PathStyle: true, PartSize: 5 << 20})
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	return st
}

// The conformance suite against a real S3 server (versitygw on loopback),
// each case under its own prefix of one bucket.
func TestConformance(t *testing.T) {
	srv := testsvc.StartS3(t)
	bucket := srv.NewBucket(t)
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		return newS3(t, srv, bucket, "case-"+strconv.FormatInt(n.Add(1), 10)+"/")
	})
}

// A multipart upload (three 5 MiB parts and a rest) reads back whole and
// by range; the server holds one object, no unfinished upload.
func TestMultipart(t *testing.T) {
	srv := testsvc.StartS3(t)
	bucket := srv.NewBucket(t)
	st := newS3(t, srv, bucket, "dg/")
	data := make([]byte, 3*(5<<20)+12345)
	rand.Read(data)
	if err := st.Put(t.Context(), "job/run/backup.dump.gz", struct{ io.Reader }{bytes.NewReader(data)}, nil); err != nil {
		t.Fatal(err)
	}
	rc, err := st.Open(t.Context(), "job/run/backup.dump.gz", 5<<20-10, 20)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data[5<<20-10:5<<20+10]) {
		t.Errorf("a range across parts: %x", got)
	}
	obj, err := st.Stat(t.Context(), "job/run/backup.dump.gz")
	if err != nil || obj.Size != int64(len(data)) {
		t.Errorf("stat: %+v %v", obj, err)
	}
	for u := range srv.Client(t).ListIncompleteUploads(t.Context(), bucket, "", true) {
		t.Errorf("unfinished upload left: %+v", u)
	}
}

// Wrong credentials, a missing bucket and an unreachable endpoint fail at
// New, each naming the config key to fix.
func TestNewRefuses(t *testing.T) {
	srv := testsvc.StartS3(t)
	bucket := srv.NewBucket(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		name string
		cfg  s3.Config
		key  string
	}{
		{"wrong secret", s3.Config{Endpoint: srv.Endpoint, Bucket: bucket, AccessKeyID: srv.AccessKey, SecretAccessKey: "wrong-secret-value", PathStyle: true}, s3.KeyAccessKeyID},
		{"missing bucket", s3.Config{Endpoint: srv.Endpoint, Bucket: "no-such-bucket", AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PathStyle: true}, s3.KeyBucket},
		{"nobody listening", s3.Config{Endpoint: "http://127.0.0.1:1", Bucket: bucket, AccessKeyID: "a", SecretAccessKey: "b", PathStyle: true}, s3.KeyEndpoint},
		{"a path in the endpoint", s3.Config{Endpoint: "http://127.0.0.1:1/bucket", Bucket: bucket}, s3.KeyEndpoint},
		{"no bucket", s3.Config{Endpoint: srv.Endpoint}, s3.KeyBucket},
		{"half a key", s3.Config{Endpoint: srv.Endpoint, Bucket: bucket, AccessKeyID: "a"}, s3.KeySecretAccessKey},
		{"a prefix without a slash", s3.Config{Endpoint: srv.Endpoint, Bucket: bucket, Prefix: "dg"}, s3.KeyPrefix},
	} {
		_, err := s3.New(ctx, c.cfg)
		var fe *storage.ConfigError
		if !errors.As(err, &fe) || fe.Key != c.key {
			t.Errorf("%s: %v, want an error naming config.%s", c.name, err, c.key)
		}
		if err != nil && strings.Contains(err.Error(), "wrong-secret-value") {
			t.Errorf("%s: the error shows the secret: %v", c.name, err)
		}
	}
}

// The server killed in the middle of an upload: Put fails, and once the
// server is back nothing is visible under the key; AbortIncomplete
// removes the unfinished upload it left.
func TestServerKilledMidUpload(t *testing.T) {
	srv := testsvc.StartS3(t)
	bucket := srv.NewBucket(t)
	st := newS3(t, srv, bucket, "dg/")
	r := storagetest.FaultAt(io.LimitReader(rand.Reader, 40<<20), 12<<20, srv.Kill)
	err := st.Put(t.Context(), "job/run/backup.dump.gz", r, nil)
	if err == nil {
		t.Fatal("Put succeeded although the server died")
	}
	again := testsvc.RestartS3(t, srv)
	st = newS3(t, again, bucket, "dg/")
	if objs, err := st.List(t.Context(), ""); err != nil || len(objs) != 0 {
		t.Fatalf("after the failed upload: %+v, %v", objs, err)
	}
	if err := st.AbortIncomplete(t.Context(), "job/"); err != nil {
		t.Fatalf("AbortIncomplete: %v", err)
	}
	for u := range again.Client(t).ListIncompleteUploads(t.Context(), bucket, "", true) {
		t.Errorf("unfinished upload left after AbortIncomplete: %+v", u)
	}
}
