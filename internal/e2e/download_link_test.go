package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/dataguardian/dataguardian/httpapi"
	"github.com/dataguardian/dataguardian/internal/servertest"
)

// TestDownloadLink: a token holding backups.download gets a link that
// downloads that backup without a token, byte for byte; the link opens
// nothing else (another backup, another operation, a changed ticket),
// stops working when its token is revoked, and a token without
// backups.download gets no link.
func TestDownloadLink(t *testing.T) {
	t.Parallel()
	srv := servertest.Start(t, nil)
	admin := client{t, srv, srv.Token}
	jobID, _, _ := backupSetup(t, admin, nil)
	first, second := runBackup(admin, jobID), runBackup(admin, jobID)

	reader := apiToken(admin, httpapi.PermRead)
	if b := reader.must(http.StatusForbidden, "POST", "/api/executions/"+first.ID+"/download-link", nil, nil); !strings.Contains(string(b), httpapi.PermDownload) {
		t.Errorf("a read token's link: %s", b)
	}
	var tok httpapi.CreatedAPIToken
	admin.must(http.StatusCreated, "POST", "/api/tokens", map[string]any{"name": "downloader", "permissions": []string{httpapi.PermDownload}}, &tok)
	dl := client{t, srv, tok.Secret}
	var link httpapi.DownloadLink
	dl.must(http.StatusOK, "POST", "/api/executions/"+first.ID+"/download-link", nil, &link)
	if !strings.HasPrefix(link.URL, "/api/executions/"+first.ID+"/download?ticket=") ||
		link.ExpiresAt.Before(time.Now()) || link.ExpiresAt.After(time.Now().Add(2*time.Minute)) {
		t.Fatalf("link: %+v", link)
	}
	anon := client{t, srv, ""}
	body := anon.must(http.StatusOK, "GET", link.URL, nil, nil)
	if sum := sha256.Sum256(body); "sha256:"+hex.EncodeToString(sum[:]) != first.Checksum {
		t.Errorf("downloaded through the link: sha256 %x, want %s", sum, first.Checksum)
	}
	dl.must(http.StatusNotFound, "POST", "/api/executions/00000000-0000-4000-8000-000000000000/download-link", nil, nil)
	anon.must(http.StatusUnauthorized, "POST", "/api/executions/"+first.ID+"/download-link", nil, nil)

	u, err := url.Parse(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	ticket := u.Query().Get("ticket")
	changed := []byte(ticket)
	changed[len(changed)/2] ^= 1
	for what, path := range map[string]string{
		"another backup":    "/api/executions/" + second.ID + "/download?ticket=" + ticket,
		"another operation": "/api/executions/" + first.ID + "?ticket=" + ticket,
		"a changed ticket":  "/api/executions/" + first.ID + "/download?ticket=" + string(changed),
	} {
		if code, b := anon.call("GET", path, nil); code != http.StatusUnauthorized {
			t.Errorf("%s: %d %.200s", what, code, b)
		}
	}

	admin.must(http.StatusNoContent, "DELETE", "/api/tokens/"+tok.ID, nil, nil)
	code, b := anon.call("GET", link.URL, nil)
	if p := decodeProblem(t, b); code != http.StatusUnauthorized || !strings.Contains(p.Detail, "download link") {
		t.Errorf("the link of a revoked token: %d %s", code, b)
	}
}
