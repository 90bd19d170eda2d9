package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/internal/testsvc"
)

// The one-shot commands on remote storages: backup --storage s3://… and
// sftp://…, ls, verify and restore of the run folder by its URL; secrets
// from the environment only; a wrong host key or a password in the URL
// refused.
func TestRemoteStorages(t *testing.T) {
	s3srv := testsvc.StartS3(t)
	bucket := s3srv.NewBucket(t)
	ssh := testsvc.StartSFTP(t)
	site := filepath.Join(t.TempDir(), "www")
	if err := os.MkdirAll(filepath.Join(site, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"index.html": strings.Repeat("olá\n", 5000), "a/b.txt": "b"} {
		if err := os.WriteFile(filepath.Join(site, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name, storage string
		env           []string
		secret        string
	}{
		{"s3", "s3://" + bucket + "/dg?path_style=true",
			[]string{"AWS_ACCESS_KEY_ID=" + s3srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s3srv.SecretKey, envS3Endpoint + "=" + s3srv.Endpoint},
			s3srv.SecretKey},
		{"sftp", "sftp://" + ssh.User + "@" + ssh.Host + ":" + strconv.Itoa(ssh.Port) + ssh.Dir + "/dg",
			[]string{envSFTPHostKey + "=" + ssh.HostKey, envSFTPPassword + "=" + ssh.Password}, ssh.Password},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := dg(t, c.env, "backup", "--type", "files", "--dsn", "file:"+site, "--storage", c.storage, "--job-id", "site", "--json")
			var b backupOutput
			if res.code != 0 || json.Unmarshal([]byte(res.stdout), &b) != nil || !strings.HasPrefix(b.Dir, strings.SplitN(c.storage, "?", 2)[0]+"/"+b.Key) {
				t.Fatalf("backup: %v", res)
			}
			run := b.Dir // the run folder's URL, the query kept
			if res := dg(t, c.env, "ls", c.storage); res.code != 0 || !strings.Contains(res.stdout, b.Key) || !strings.Contains(res.stdout, "completed") {
				t.Errorf("ls: %v", res)
			}
			if res := dg(t, c.env, "verify", run); res.code != 0 {
				t.Errorf("verify %s: %v", run, res)
			}
			restored := filepath.Join(t.TempDir(), "restored")
			if res := dg(t, c.env, "restore", run, "--dsn", restored); res.code != 0 {
				t.Fatalf("restore %s: %v", run, res)
			}
			if got, want := treeListing(t, restored), treeListing(t, site); !slices.Equal(got, want) {
				t.Errorf("restored tree differs:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			for _, r := range []result{res} {
				if strings.Contains(r.stdout+r.stderr, c.secret) {
					t.Errorf("the output shows the secret: %v", r)
				}
			}
		})
	}

	// SFTP refusals: another host key; a password in the URL.
	other := testsvc.StartSFTP(t)
	res := dg(t, []string{envSFTPHostKey + "=" + other.HostKey, envSFTPPassword + "=" + ssh.Password}, "ls",
		"sftp://"+ssh.User+"@"+ssh.Host+":"+strconv.Itoa(ssh.Port)+ssh.Dir+"/dg")
	if res.code != exitUsage || !strings.Contains(res.stderr, "host key") {
		t.Errorf("another host key: %v", res)
	}
	if res := dg(t, nil, "ls", "sftp://"+ssh.User+"@"+ssh.Host+":99999"+ssh.Dir); res.code != exitUsage || !strings.Contains(res.stderr, "port") {
		t.Errorf("a port out of range: %v", res)
	}
	res = dg(t, nil, "ls", "sftp://"+ssh.User+":hunter2@"+ssh.Host+":"+strconv.Itoa(ssh.Port)+ssh.Dir)
	if res.code != exitUsage || strings.Contains(res.stderr, "hunter2") || !strings.Contains(res.stderr, envSFTPPassword) {
		t.Errorf("a password in the URL: %v", res)
	}
}
