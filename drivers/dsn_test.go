package drivers_test

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/dataguardian/dataguardian/drivers"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		typ, dsn string
		want     drivers.Source
	}{
		{"postgres", "postgres://user:pass@db.example:5433/shop?sslmode=disable&application_name=dg",
			drivers.Source{Type: "postgres", Host: "db.example", Port: 5433, Database: "shop", Username: "user", Password: "pass",
				Options: map[string]string{"sslmode": "disable", "application_name": "dg"}}},
		{"postgres", "postgresql://postgres@127.0.0.1/app",
			drivers.Source{Type: "postgres", Host: "127.0.0.1", Port: 5432, Database: "app", Username: "postgres"}},
		{"postgresql", "POSTGRES://u@[::1]:6000/app",
			drivers.Source{Type: "postgres", Host: "::1", Port: 6000, Database: "app", Username: "u"}},
		{"postgres", "postgres://us%40er:p%40ss%2F%3A%23%20w@h/d",
			drivers.Source{Type: "postgres", Host: "h", Port: 5432, Database: "d", Username: "us@er", Password: "p@ss/:# w"}},
		{"postgres", "postgres:///app?host=/var/run/postgresql&password=fromquery&user=x&port=5444&connect_timeout=3",
			drivers.Source{Type: "postgres", Host: "/var/run/postgresql", Port: 5444, Database: "app", Password: "fromquery", Username: "x",
				Options: map[string]string{"connect_timeout": "3"}}},
		{"postgres", "postgres://h?dbname=app", drivers.Source{Type: "postgres", Host: "h", Port: 5432, Database: "app"}},
		{"mysql", "mysql://root:secret@127.0.0.1:3307/shop",
			drivers.Source{Type: "mysql", Host: "127.0.0.1", Port: 3307, Database: "shop", Username: "root", Password: "secret"}},
		{"mariadb", "mariadb://root@localhost/shop?charset=utf8mb4",
			drivers.Source{Type: "mariadb", Host: "localhost", Port: 3306, Database: "shop", Username: "root", Options: map[string]string{"charset": "utf8mb4"}}},
		{"mysql", "root:p@ss:w/rd@tcp(db:3310)/shop?parseTime=true",
			drivers.Source{Type: "mysql", Host: "db", Port: 3310, Database: "shop", Username: "root", Password: "p@ss:w/rd", Options: map[string]string{"parseTime": "true"}}},
		{"mariadb", "app:p%40ss@tcp([::1]:3306)/shop",
			drivers.Source{Type: "mariadb", Host: "::1", Port: 3306, Database: "shop", Username: "app", Password: "p%40ss"}},
		{"mysql", "root@tcp(localhost)/shop",
			drivers.Source{Type: "mysql", Host: "localhost", Port: 3306, Database: "shop", Username: "root"}},
		{"mysql", "root@/shop",
			drivers.Source{Type: "mysql", Host: "127.0.0.1", Port: 3306, Database: "shop", Username: "root"}},
		{"mysql", "root@unix(/run/mysqld/mysqld.sock)/shop",
			drivers.Source{Type: "mysql", Host: "localhost", Port: 3306, Database: "shop", Username: "root", Options: map[string]string{"socket": "/run/mysqld/mysqld.sock"}}},
		{"sqlite", "/srv/app.db", drivers.Source{Type: "sqlite", Path: "/srv/app.db"}},
		{"sqlite", "file:data/app.db?mode=ro", drivers.Source{Type: "sqlite", Path: "data/app.db"}},
		{"sqlite", "file:///srv/my%20app.db", drivers.Source{Type: "sqlite", Path: "/srv/my app.db"}},
		{"files", "./site/", drivers.Source{Type: "files", Path: "site"}},
		{"files", "file:/var/www?x", drivers.Source{Type: "files", Path: "/var/www?x"}},
		{"files", "./odd:// dir", drivers.Source{Type: "files", Path: "odd:/ dir"}},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.dsn, func(t *testing.T) {
			got, err := drivers.ParseDSN(tt.typ, tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
			if tt.want.Password != "" && strings.Contains(got.String(), tt.want.Password) {
				t.Errorf("String() %q shows the password", got.String())
			}
		})
	}
}

func TestParseDSNErrors(t *testing.T) {
	const pw = "Hunter2Secret"
	tests := []struct{ typ, dsn, want string }{
		{"oracle", "oracle://x", "unknown datasource type"},
		{"postgres", "mysql://u:" + pw + "@h/db", "must start with postgres://"},
		{"postgres", "host=h user=u password=" + pw, "must start with postgres://"},
		{"postgres", "postgres://u:" + pw + "@h:99999/db", "port 99999 is out of range"},
		{"postgres", "postgres://u:" + pw + "@h:-1/db", "not a valid URL"},
		{"postgres", "postgres://u:" + pw + "/x@h/db", "not a valid URL"}, // unencoded "/" in the password
		{"postgres", "postgres://u:" + pw + "%zz@h/db", "not followed by two hex digits"},
		{"postgres", "postgres://u:" + pw + "#x@h/db", "not a valid URL"},
		{"postgres", "postgres://u:" + pw + "@h", "one database name"},
		{"postgres", "postgres://u:" + pw + "@h/a/b", "one database name"},
		{"postgres", "postgres://u:" + pw + "@h/db?a=%zz" + pw, "query"},
		{"mysql", "u:" + pw + "@tcp(h:3306)", "no \"/\" before the database name"},
		{"mysql", "u:" + pw + "@tcp(h:3306)/", "no database name"},
		{"mysql", "u:" + pw + "@tcp(h:port)/db", "port is not a number"},
		{"mysql", "u:" + pw + "@tcp(h:3306/db", "address must look like tcp(HOST:PORT)"},
		{"mysql", "u:" + pw + "@pipe(x)/db", "network must be tcp or unix"},
		{"mysql", "u:" + pw + "@unix()/db", "needs the socket path"},
		{"mysql", "u:" + pw + "@tcp([::1/db", "address must look like"},
		{"mysql", "u:" + pw + "@tcp([::1]x)/db", "only \":PORT\" may follow"},
		{"mariadb", "mariadb://u:" + pw + "@h:0/db", "port 0 is out of range"},
		{"sqlite", "", "empty path"},
		{"files", "file:", "empty path"},
		{"sqlite", "file://remote/x.db", "file:///ABSOLUTE/PATH"},
		{"sqlite", "postgres://u:" + pw + "@h/db", "looks like a URL"},
		{"files", "s3://u:" + pw + "@bucket/x", "looks like a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.typ+" "+tt.want, func(t *testing.T) {
			_, err := drivers.ParseDSN(tt.typ, tt.dsn)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, drivers.ErrInvalidSource) {
				t.Errorf("%v does not match ErrInvalidSource", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), "Hunter") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// secretChars never appear in ParseDSN's own messages, so a password
// holding one of them is found in an error only if the error repeats it.
const secretChars = "!$&*<>[]^`{|}~\u00a7"

// FuzzParseDSN checks that ParseDSN never panics, never repeats the
// password in an error or in Source.String, and reads back the user and
// password of a URL built with proper escaping.
func FuzzParseDSN(f *testing.F) {
	f.Add(uint8(0), "user", "s3cr$t", "db.example:5432", "shop?sslmode=disable")
	f.Add(uint8(1), "root", "p@ss:w/rd!", "tcp(127.0.0.1:3306)", "shop")
	f.Add(uint8(2), "u", "a/b#c?d!", "h:99", "db")
	f.Add(uint8(3), "", "", "", "")
	f.Add(uint8(4), "root", "x!", "unix(/tmp/s)", "db?%zz")
	f.Add(uint8(5), "u", "pw!", "h", "/srv/app.db")
	f.Fuzz(func(t *testing.T, form uint8, user, pass, host, rest string) {
		types := []string{"postgres", "mysql", "mariadb", "sqlite", "files", "postgresql"}
		typ := types[int(form)%len(types)]
		var dsn string
		escaped := form%4 == 0 && (typ == "postgres" || typ == "postgresql" || typ == "mysql")
		switch {
		case escaped:
			u := url.URL{Scheme: typ, User: url.UserPassword(user, pass), Host: "h", Path: "/db"}
			dsn = u.String()
		case form%4 == 1:
			dsn = typ + "://" + user + ":" + pass + "@" + host + "/" + rest
		case form%4 == 2:
			dsn = user + ":" + pass + "@" + host + "/" + rest
		default:
			dsn = user + ":" + pass + "@" + host + rest
		}
		src, err := drivers.ParseDSN(typ, dsn)
		secret := len(pass) >= 2 && strings.ContainsAny(pass, secretChars)
		if err != nil {
			if !errors.Is(err, drivers.ErrInvalidSource) {
				t.Fatalf("error %q does not match ErrInvalidSource", err)
			}
			if secret && strings.Contains(err.Error(), pass) {
				t.Fatalf("error %q repeats the password %q of %q", err, pass, dsn)
			}
			return
		}
		shown := strings.Contains(src.String(), src.Password)
		elsewhere := strings.Contains(src.Username+"\x00"+src.Host+"\x00"+src.Database, src.Password)
		if src.Password != "" && strings.ContainsAny(src.Password, secretChars) && shown && !elsewhere {
			t.Fatalf("String() %q shows the password", src.String())
		}
		if escaped && src.Path == "" && (src.Username != user || src.Password != pass) {
			t.Fatalf("escaped URL %q: got user %q password %q, want %q %q", dsn, src.Username, src.Password, user, pass)
		}
	})
}
