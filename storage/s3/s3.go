// Package s3 is a storage.Storage on a bucket of any S3-compatible service
// (AWS S3, MinIO, Cloudflare R2, Backblaze B2, Wasabi, versitygw), through
// minio-go.
//
// Objects are written with a streaming multipart upload through one
// pooled buffer of Config.PartSize, so memory does not grow with the
// backup; an
// object becomes visible only when its upload completes, and a failed or
// cancelled upload is aborted (AbortIncomplete removes what a killed
// process left). IfNotExist is the conditional write If-None-Match: *.
// Reads are ranged GETs; Rename is a server-side copy and a delete.
package s3

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/dataguardian/dataguardian/storage"
)

// smallObject is how much a Put reads before it takes a part buffer: a
// stream that ends within it (a manifest, a checksum list) goes up in one
// request without one.
const smallObject = 1 << 20

// DefaultPartSize is the size of each uploaded part, and of the one buffer
// a Put holds: S3 allows at most 10,000 parts, so objects up to ~156 GiB.
const DefaultPartSize = 16 << 20

// Config locates a bucket and says how to reach it.
type Config struct {
	// Endpoint is the service's URL: https://s3.amazonaws.com (the
	// default), https://<account>.r2.cloudflarestorage.com,
	// http://127.0.0.1:9000 for a local MinIO. Its scheme chooses TLS;
	// certificates are always verified.
	Endpoint string
	// Bucket is the bucket's name (required); it must exist.
	Bucket string
	// Prefix is put before every key, e.g. "dataguardian/": the storage's
	// root inside the bucket. "" is the bucket's root.
	Prefix string
	// Region is the bucket's region; "" lets the client find it.
	Region string
	// AccessKeyID and SecretAccessKey authenticate with a static key,
	// SessionToken with temporary credentials. Without them the standard
	// chain is used: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and
	// AWS_SESSION_TOKEN), then ~/.aws/credentials (AWS_PROFILE), then the
	// instance's IAM role.
	AccessKeyID, SecretAccessKey, SessionToken string
	// PathStyle addresses the bucket in the path (endpoint/bucket/key), as
	// MinIO and most self-hosted services need; false lets the client
	// choose (virtual-host style on AWS).
	PathStyle bool
	// PartSize is the size of each uploaded part; 0 means DefaultPartSize.
	// It must be at least 5 MiB (the S3 minimum).
	PartSize int64
	// Transport, when set, carries the requests (tests, proxies).
	Transport http.RoundTripper
}

// Config keys of a storage location of type "s3" (see ConfigFrom).
const (
	KeyEndpoint        = "endpoint"
	KeyBucket          = "bucket"
	KeyPrefix          = "prefix"
	KeyRegion          = "region"
	KeyAccessKeyID     = "access_key_id"
	KeySecretAccessKey = "secret_access_key"
	KeySessionToken    = "session_token"
	KeyPathStyle       = "path_style"
	KeyPartSizeMB      = "part_size_mb"
)

// SecretKeys are the config keys holding secrets: the server stores them
// sealed and never shows them.
var SecretKeys = []string{KeySecretAccessKey, KeySessionToken}

// ConfigFrom reads a storage location's config map (keys Key*), naming
// the key of any bad value in a *storage.ConfigError.
func ConfigFrom(m map[string]string) (Config, error) {
	c := Config{Endpoint: m[KeyEndpoint], Bucket: m[KeyBucket], Prefix: m[KeyPrefix], Region: m[KeyRegion],
		AccessKeyID: m[KeyAccessKeyID], SecretAccessKey: m[KeySecretAccessKey], SessionToken: m[KeySessionToken]}
	if v := m[KeyPathStyle]; v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, &storage.ConfigError{Key: KeyPathStyle, Err: fmt.Errorf("%q is not a boolean: use true or false", v)}
		}
		c.PathStyle = b
	}
	if v := m[KeyPartSizeMB]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 5 || n > 5120 {
			return c, &storage.ConfigError{Key: KeyPartSizeMB, Err: fmt.Errorf("%q: use a whole number of MiB from 5 to 5120", v)}
		}
		c.PartSize = n << 20
	}
	return c, c.check()
}

func (c *Config) check() error {
	switch {
	case c.Bucket == "":
		return &storage.ConfigError{Key: KeyBucket, Err: errors.New("empty: name the bucket, which must exist")}
	case (c.AccessKeyID == "") != (c.SecretAccessKey == ""):
		key := KeySecretAccessKey
		if c.AccessKeyID == "" {
			key = KeyAccessKeyID
		}
		return &storage.ConfigError{Key: key, Err: errors.New("give both access_key_id and secret_access_key, or neither (the AWS environment and profile chain)")}
	case c.PartSize != 0 && c.PartSize < 5<<20:
		return &storage.ConfigError{Key: KeyPartSizeMB, Err: errors.New("parts must be at least 5 MiB")}
	}
	if c.Prefix != "" {
		if err := storage.ValidatePrefix(c.Prefix); err != nil || !strings.HasSuffix(c.Prefix, "/") {
			return &storage.ConfigError{Key: KeyPrefix, Err: fmt.Errorf("%q: use a relative path ending in \"/\", such as dataguardian/", c.Prefix)}
		}
	}
	if _, _, err := c.endpoint(); err != nil {
		return &storage.ConfigError{Key: KeyEndpoint, Err: err}
	}
	return nil
}

// endpoint returns the host[:port] and whether to use TLS.
func (c *Config) endpoint() (string, bool, error) {
	if c.Endpoint == "" {
		return "s3.amazonaws.com", true, nil
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
		return "", false, fmt.Errorf("%q: use the service's URL, such as https://s3.amazonaws.com or http://127.0.0.1:9000, without a path", c.Endpoint)
	}
	return u.Host, u.Scheme == "https", nil
}

// S3 is a storage.Storage on one bucket under a key prefix. It is safe for
// concurrent use.
type S3 struct {
	c        *minio.Client
	bucket   string
	prefix   string
	partSize uint64
	bufs     sync.Pool // *[]byte of partSize
}

var (
	_ storage.Storage = (*S3)(nil)
	_ storage.Renamer = (*S3)(nil)
	_ storage.Aborter = (*S3)(nil)
)

// New returns the storage cfg describes, after checking that the bucket
// exists and the credentials may read it (a wrong key, a missing bucket
// or an unreachable endpoint fails here, naming which).
func New(ctx context.Context, cfg Config) (*S3, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	host, secure, _ := cfg.endpoint()
	var creds *credentials.Credentials
	if cfg.AccessKeyID != "" {
		creds = credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{}, &credentials.FileAWSCredentials{}, &credentials.IAM{}})
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		t.ResponseHeaderTimeout = 2 * time.Minute
		tr = t
	}
	c, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Region: cfg.Region, BucketLookup: lookup,
		Transport: tr, MaxRetries: 3})
	if err != nil {
		return nil, &storage.ConfigError{Key: KeyEndpoint, Err: err}
	}
	part := cfg.PartSize
	if part == 0 {
		part = DefaultPartSize
	}
	s := &S3{c: c, bucket: cfg.Bucket, prefix: cfg.Prefix, partSize: uint64(part)}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	switch {
	case err != nil:
		return nil, s.explain(err, host)
	case !ok:
		return nil, &storage.ConfigError{Key: KeyBucket, Err: fmt.Errorf("no bucket %q at %s: create it first", cfg.Bucket, host)}
	}
	return s, nil
}

// explain turns a failed probe of the bucket into an error naming the
// config key to fix.
func (s *S3) explain(err error, host string) error {
	switch r := minio.ToErrorResponse(err); r.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidToken", "ExpiredToken":
		return &storage.ConfigError{Key: KeyAccessKeyID, Err: fmt.Errorf("%s refused the credentials for bucket %q (%s): check access_key_id and secret_access_key", host, s.bucket, r.Code)}
	}
	return &storage.ConfigError{Key: KeyEndpoint, Err: fmt.Errorf("cannot reach bucket %q at %s: %w", s.bucket, host, err)}
}

func (s *S3) key(key string) string { return s.prefix + key }

// fail wraps err of op on key, mapping the service's answers to the
// storage sentinels.
func fail(op, key string, err error) error {
	r := minio.ToErrorResponse(err)
	switch {
	case r.Code == "NoSuchKey" || r.Code == "NotFound" || (r.StatusCode == http.StatusNotFound && r.Code != "NoSuchBucket"):
		err = fmt.Errorf("%w: %s", storage.ErrNotFound, r.Code)
	case r.Code == "PreconditionFailed" || r.StatusCode == http.StatusPreconditionFailed:
		err = fmt.Errorf("%w (%s)", storage.ErrExist, r.Code)
	}
	return &storage.OpError{Op: op, Key: key, Err: err}
}

// readerErr remembers the error of the reader Put streams from, so that
// Put returns it wrapped whatever the client made of it.
type readerErr struct {
	r   io.Reader
	err error
}

func (r *readerErr) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// Put uploads r to key: in one request when it ends within one part,
// else as a multipart upload of PartSize parts, completed only at r's end
// (aborted on any failure). A Put first reads up to 1 MiB; only a longer
// stream takes a part buffer, reused from Put to Put, so a backup's many
// parts leave no PartSize of garbage each and a small object costs no
// part buffer.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, opts *storage.PutOptions) error {
	if err := storage.ValidateKey(key); err != nil {
		return &storage.OpError{Op: "put", Key: key, Err: err}
	}
	po := minio.PutObjectOptions{ContentType: "application/octet-stream"}
	if opts != nil && opts.IfNotExist {
		po.SetMatchETagExcept("*")
	}
	src := &readerErr{r: r}
	failed := func(err error) error {
		switch {
		case src.err != nil:
			return &storage.OpError{Op: "put", Key: key, Err: src.err}
		case ctx.Err() != nil:
			return &storage.OpError{Op: "put", Key: key, Err: fmt.Errorf("%w (%v)", ctx.Err(), err)}
		}
		return fail("put", key, err)
	}
	ended := func(err error) bool { return err == io.EOF || err == io.ErrUnexpectedEOF }

	head := make([]byte, smallObject)
	n, err := io.ReadFull(src, head)
	if ended(err) {
		return s.putOne(ctx, key, head[:n], po, failed)
	}
	if err != nil {
		return &storage.OpError{Op: "put", Key: key, Err: err}
	}
	bp := s.buffer()
	defer s.bufs.Put(bp)
	buf := *bp
	n = copy(buf, head)
	m, err := io.ReadFull(src, buf[n:])
	n += m
	if ended(err) {
		return s.putOne(ctx, key, buf[:n], po, failed)
	}
	if err != nil {
		return &storage.OpError{Op: "put", Key: key, Err: err}
	}
	core := minio.Core{Client: s.c}
	id, err := core.NewMultipartUpload(ctx, s.bucket, s.key(key), po)
	if err != nil {
		return failed(err)
	}
	var parts []minio.CompletePart
	for {
		p, err := core.PutObjectPart(ctx, s.bucket, s.key(key), id, len(parts)+1, bytes.NewReader(buf[:n]), int64(n), minio.PutObjectPartOptions{})
		if err != nil {
			s.abort(key, id)
			return failed(err)
		}
		parts = append(parts, minio.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag})
		n, err = io.ReadFull(src, buf)
		if err == io.EOF {
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			s.abort(key, id)
			return failed(err)
		}
	}
	if _, err := core.CompleteMultipartUpload(ctx, s.bucket, s.key(key), id, parts, po); err != nil {
		s.abort(key, id)
		return failed(err)
	}
	return nil
}

// putOne uploads data to key in one request. A file-system-backed S3
// server (versitygw's posix backend) answers 409 ExistingObjectIsDirectory
// when a concurrent delete removed the key's empty parent folder while the
// object was linked in; the PUT, whole in memory, is sent again then (at
// most twice more).
func (s *S3) putOne(ctx context.Context, key string, data []byte, po minio.PutObjectOptions, failed func(error) error) error {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return &storage.OpError{Op: "put", Key: key, Err: err}
		}
		_, err := s.c.PutObject(ctx, s.bucket, s.key(key), bytes.NewReader(data), int64(len(data)), po)
		if err == nil {
			return nil
		}
		if attempt == 2 || minio.ToErrorResponse(err).Code != "ExistingObjectIsDirectory" {
			return failed(err)
		}
	}
}

// buffer returns a part buffer from the pool.
func (s *S3) buffer() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, s.partSize)
	return &b
}

// abort ends an unfinished multipart upload, also when the Put's context
// is done (AbortIncomplete removes what this could not).
func (s *S3) abort(key, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = minio.Core{Client: s.c}.AbortMultipartUpload(ctx, s.bucket, s.key(key), id)
}

// Open reads length bytes of key from offset (length < 0: to the end),
// in one GET, so that what it reads is one version of the object even
// while another Put replaces it.
func (s *S3) Open(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, &storage.OpError{Op: "open", Key: key, Err: err}
	}
	empty := io.NopCloser(strings.NewReader(""))
	if length == 0 {
		if _, err := s.Stat(ctx, key); err != nil {
			return nil, &storage.OpError{Op: "open", Key: key, Err: errors.Unwrap(err)}
		}
		return empty, nil
	}
	var gopts minio.GetObjectOptions
	var err error
	switch {
	case length > 0:
		err = gopts.SetRange(offset, offset+length-1) // a range past the end is cut there
	case offset > 0:
		err = gopts.SetRange(offset, 0) // to the end
	}
	if err != nil {
		return nil, &storage.OpError{Op: "open", Key: key, Err: err}
	}
	body, _, _, err := minio.Core{Client: s.c}.GetObject(ctx, s.bucket, s.key(key), gopts)
	if err != nil {
		if r := minio.ToErrorResponse(err); r.Code == "InvalidRange" || r.StatusCode == http.StatusRequestedRangeNotSatisfiable {
			return empty, nil // the object exists; offset is at or past its end
		}
		return nil, fail("open", key, err)
	}
	return body, nil
}

// Stat describes key.
func (s *S3) Stat(ctx context.Context, key string) (storage.Object, error) {
	if err := storage.ValidateKey(key); err != nil {
		return storage.Object{}, &storage.OpError{Op: "stat", Key: key, Err: err}
	}
	info, err := s.c.StatObject(ctx, s.bucket, s.key(key), minio.StatObjectOptions{})
	if err != nil {
		return storage.Object{}, fail("stat", key, err)
	}
	return storage.Object{Key: key, Size: info.Size, ModTime: info.LastModified}, nil
}

// List returns every object under prefix, sorted by key (S3 lists in
// UTF-8 byte order, which is Go's string order), page after page.
func (s *S3) List(ctx context.Context, prefix string) ([]storage.Object, error) {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return nil, &storage.OpError{Op: "list", Key: prefix, Err: err}
	}
	var out []storage.Object
	for o := range s.c.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.key(prefix), Recursive: true}) {
		if o.Err != nil {
			return nil, fail("list", prefix, o.Err)
		}
		k := strings.TrimPrefix(o.Key, s.prefix)
		if storage.ValidateKey(k) != nil {
			continue // not an object of ours (a folder marker, a foreign name)
		}
		out = append(out, storage.Object{Key: k, Size: o.Size, ModTime: o.LastModified})
	}
	return out, nil
}

// Delete removes key; a missing key is no error.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return &storage.OpError{Op: "delete", Key: key, Err: err}
	}
	if err := s.c.RemoveObject(ctx, s.bucket, s.key(key), minio.RemoveObjectOptions{}); err != nil {
		if r := minio.ToErrorResponse(err); r.Code == "NoSuchKey" || r.StatusCode == http.StatusNotFound && r.Code != "NoSuchBucket" {
			return nil
		}
		return fail("delete", key, err)
	}
	return nil
}

// Rename copies from to to on the server side, then deletes from.
func (s *S3) Rename(ctx context.Context, from, to string) error {
	for _, k := range []string{from, to} {
		if err := storage.ValidateKey(k); err != nil {
			return &storage.OpError{Op: "rename", Key: k, Err: err}
		}
	}
	if _, err := s.Stat(ctx, from); err != nil {
		return &storage.OpError{Op: "rename", Key: from, Err: errors.Unwrap(err)}
	}
	_, err := s.c.ComposeObject(ctx, minio.CopyDestOptions{Bucket: s.bucket, Object: s.key(to)},
		minio.CopySrcOptions{Bucket: s.bucket, Object: s.key(from)})
	if err != nil {
		return fail("rename", from, err)
	}
	return s.Delete(ctx, from)
}

// AbortIncomplete aborts the unfinished multipart uploads of keys under
// prefix (a process killed mid-upload leaves them, invisible but billed).
func (s *S3) AbortIncomplete(ctx context.Context, prefix string) error {
	if err := storage.ValidatePrefix(prefix); err != nil {
		return &storage.OpError{Op: "abort", Key: prefix, Err: err}
	}
	var errs []error
	for u := range s.c.ListIncompleteUploads(ctx, s.bucket, s.key(prefix), true) {
		if u.Err != nil {
			return fail("abort", prefix, u.Err)
		}
		if err := s.c.RemoveIncompleteUpload(ctx, s.bucket, u.Key); err != nil {
			errs = append(errs, fail("abort", strings.TrimPrefix(u.Key, s.prefix), err))
		}
	}
	return errors.Join(errs...)
}
