package main

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/dataguardian/dataguardian/storage"
	"github.com/dataguardian/dataguardian/storage/s3"
	"github.com/dataguardian/dataguardian/storage/sftp"
)

// Environment of the one-shot commands' remote storages: secrets never go
// in a URL or a flag (visible in ps and shell history).
const (
	envS3Endpoint     = "DG_S3_ENDPOINT"           // default https://s3.amazonaws.com
	envSFTPHostKey    = "DG_SFTP_HOST_KEY"         // the server's host key, as ssh-keyscan prints it
	envSFTPPassword   = "DG_SFTP_PASSWORD"         // or:
	envSFTPPrivateKey = "DG_SFTP_PRIVATE_KEY_FILE" // a private key file
)

// remoteHelp says how the one-shot commands reach S3 and SFTP.
const remoteHelp = "s3://BUCKET/PREFIX (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws; " +
	envS3Endpoint + " for another service than AWS, ?region=R&path_style=true as needed) or sftp://USER@HOST[:PORT]/ABS/PATH (" +
	envSFTPHostKey + " required, " + envSFTPPassword + " or " + envSFTPPrivateKey + ")"

// isRemote reports whether s names a remote storage (s3:// or sftp://).
func isRemote(s string) bool {
	return strings.HasPrefix(s, "s3://") || strings.HasPrefix(s, "sftp://")
}

// openRemote opens the storage rooted at the URL s. With asRun, the URL's
// last path element is a run folder: the storage is rooted at its parent
// and key is that folder's name.
func (c *cli) openRemote(ctx context.Context, s string, asRun bool) (st storage.Storage, key string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, "", usagef("%q: use %s", s, remoteHelp)
	}
	p := strings.Trim(u.Path, "/")
	if asRun {
		i := strings.LastIndexByte(p, '/')
		if i < 0 && u.Scheme == "s3" && p == "" {
			return nil, "", usagef("%q names no run folder: add its path, as 'dataguardian ls' prints it", s)
		}
		key, p = p[i+1:], p[:max(i, 0)]
	}
	defer func() {
		var ce *storage.ConfigError
		if err != nil && errors.As(err, &ce) {
			err = usagef("%s: %v (%s)", s, ce.Err, remoteHelp)
		}
	}()
	switch u.Scheme {
	case "s3":
		cfg := s3.Config{Endpoint: c.getenv(envS3Endpoint), Bucket: u.Host, Region: u.Query().Get("region"),
			AccessKeyID: c.getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: c.getenv("AWS_SECRET_ACCESS_KEY"),
			SessionToken: c.getenv("AWS_SESSION_TOKEN"), PathStyle: u.Query().Get("path_style") == "true"}
		if p != "" {
			cfg.Prefix = p + "/"
		}
		c.secrets.add(cfg.SecretAccessKey)
		st, err = s3.New(ctx, cfg)
	case "sftp":
		cfg := sftp.Config{Host: u.Hostname(), User: u.User.Username(), Path: "/" + p, HostKey: c.getenv(envSFTPHostKey),
			Password: c.getenv(envSFTPPassword)}
		if _, set := u.User.Password(); set {
			return nil, "", usagef("%q: put the password in %s, not in the URL", strings.Replace(s, u.User.String()+"@", u.User.Username()+":***@", 1), envSFTPPassword)
		}
		if port := u.Port(); port != "" {
			if cfg.Port, err = strconv.Atoi(port); err != nil || cfg.Port < 1 || cfg.Port > 65535 {
				return nil, "", usagef("%q: port %q: use a number from 1 to 65535", s, port)
			}
		}
		if f := c.getenv(envSFTPPrivateKey); f != "" {
			b, rerr := os.ReadFile(f)
			if rerr != nil {
				return nil, "", usagef("%s %s: %v", envSFTPPrivateKey, f, rerr)
			}
			cfg.PrivateKey = string(b)
		}
		c.secrets.add(cfg.Password)
		st, err = sftp.New(ctx, cfg)
	default:
		return nil, "", usagef("%q: use %s", s, remoteHelp)
	}
	if err != nil {
		return nil, "", err
	}
	return st, key, nil
}

// remoteJoin is the URL of key under the remote storage URL root (its
// query kept at the end).
func remoteJoin(root, key string) string {
	u, err := url.Parse(root)
	if err != nil {
		return strings.TrimSuffix(root, "/") + "/" + key
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + key
	return u.String()
}
