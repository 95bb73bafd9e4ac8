package main

import (
	"bytes"
	"context"
	"testing"
)

func TestEmbed(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	want := "1 Success [hello, ada!]\n2 Timeout []\n3 Success [hello, grace!]\n4 Success [hello, linus!]\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}
