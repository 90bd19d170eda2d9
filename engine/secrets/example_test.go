package secrets_test

import (
	"bytes"
	"crypto/rand"
	"fmt"

	"github.com/dataguardian/dataguardian/engine/secrets"
)

// A password is sealed before it is stored and opened only when a
// connection needs it; another key cannot open it.
func ExampleSealer() {
	key := make([]byte, 32) // in production: DG_SECRET_KEY, see DecodeSecretKey
	rand.Read(key)
	s, err := secrets.NewSealer(key)
	if err != nil {
		panic(err)
	}
	sealed, err := s.Seal([]byte("s3cret"))
	if err != nil {
		panic(err)
	}
	fmt.Println(bytes.Contains(sealed, []byte("s3cret")))
	plain, err := s.Open(sealed)
	fmt.Println(string(plain), err)

	other, _ := secrets.NewSealer(make([]byte, 32))
	_, err = other.Open(sealed)
	fmt.Println(err)
	// Output:
	// false
	// s3cret <nil>
	// decrypt secret: wrong secret key or altered data
}
