package aerofn

import (
	"errors"
	"testing"
)

func TestFetch(t *testing.T) {
	fake := &fakeHost{fetchReply: []byte(`{"status":503,"headers":{"content-type":"application/json","set-cookie":["a","b"]},"body":"{\"ok\":false}"}`)}
	useHost(t, fake)

	resp, err := Fetch(FetchRequest{URL: "https://api.example.com/x"})
	if err != nil {
		t.Fatal(err)
	}
	if string(fake.fetchReq) != `{"url":"https://api.example.com/x","method":"GET"}` {
		t.Errorf("request = %s", fake.fetchReq)
	}
	if resp.Status != 503 || resp.Headers.Get("content-type") != "application/json" || len(resp.Headers["set-cookie"]) != 2 {
		t.Errorf("response = %+v", resp)
	}
	var body struct{ OK bool }
	if err := resp.DecodeJSON(&body); err != nil || body.OK {
		t.Errorf("DecodeJSON = %+v, %v", body, err)
	}
}

func TestFetchError(t *testing.T) {
	useHost(t, &fakeHost{fetchReply: []byte(`{"error":{"code":"not_allowed","message":"host not on the allow-list"}}`)})
	_, err := Fetch(FetchRequest{URL: "https://evil.example", Method: "POST", Body: "x"})
	var fe *FetchError
	if !errors.As(err, &fe) || fe.Code != "not_allowed" || err.Error() != "http_fetch not_allowed: host not on the allow-list" {
		t.Errorf("err = %v (%T)", err, err)
	}
}

func TestFetchBinary(t *testing.T) {
	fake := &fakeHost{fetchReply: []byte(`{"status":200,"headers":{},"body":"AP8=","body_encoding":"base64"}`)}
	useHost(t, fake)
	resp, err := Fetch(FetchRequest{URL: "https://api.example.com/x", Method: "PUT", Body: string([]byte{0x89, 'P', 'N', 'G', 0x00})})
	if err != nil {
		t.Fatal(err)
	}
	if string(fake.fetchReq) != `{"url":"https://api.example.com/x","method":"PUT","body":"iVBORwA=","body_encoding":"base64"}` {
		t.Errorf("request = %s", fake.fetchReq)
	}
	if resp.Body != string([]byte{0x00, 0xff}) || resp.BodyEncoding != "" {
		t.Errorf("body = %q (%s)", resp.Body, resp.BodyEncoding)
	}
	// Text goes as text.
	if _, err := Fetch(FetchRequest{URL: "https://api.example.com/x", Method: "POST", Body: "héllo"}); err != nil {
		t.Fatal(err)
	}
	if string(fake.fetchReq) != `{"url":"https://api.example.com/x","method":"POST","body":"héllo"}` {
		t.Errorf("text request = %s", fake.fetchReq)
	}
	fake.fetchReply = []byte(`{"status":200,"body":"%%","body_encoding":"base64"}`)
	if _, err := Fetch(FetchRequest{URL: "https://api.example.com/x"}); err == nil {
		t.Error("bad base64 accepted")
	}
}
