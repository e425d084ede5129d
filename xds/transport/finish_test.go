package transport

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// longMessage is a status message whose trailers need more than one frame.
var longMessage = strings.Repeat("bad node: no cluster matches ", 1400)

// TestFinish: Stream.Finish, called from another goroutine than the reader, ends the
// client's stream with its status, and closes the receiver.
func TestFinish(t *testing.T) {
	for _, tc := range []struct {
		name      string
		respond   bool // send a response first, so that the status comes in trailers after headers
		err       error
		wantEOF   bool
		wantCode  codes.Code
		wantMsg   string
		closeSend bool // the client half-closed before Finish
	}{
		{name: "status", err: status.Error(codes.InvalidArgument, "bad node"), wantCode: codes.InvalidArgument, wantMsg: "bad node"},
		{name: "status after a response", respond: true, err: status.Error(codes.InvalidArgument, "bad node"), wantCode: codes.InvalidArgument, wantMsg: "bad node"},
		{name: "nil", err: nil, wantEOF: true},
		{name: "nil after a response", respond: true, err: nil, wantEOF: true},
		{name: "message to percent-encode", err: status.Error(codes.FailedPrecondition, "100% bad\nnode ✗"), wantCode: codes.FailedPrecondition, wantMsg: "100% bad\nnode ✗"},
		{name: "plain error", err: errors.New("boom"), wantCode: codes.Unknown, wantMsg: "boom"},
		// Trailers larger than a frame go out as HEADERS and CONTINUATION frames.
		{name: "40 KB message", err: status.Error(codes.InvalidArgument, longMessage), wantCode: codes.InvalidArgument, wantMsg: longMessage},
		{name: "40 KB message after a response", respond: true, err: status.Error(codes.InvalidArgument, longMessage), wantCode: codes.InvalidArgument, wantMsg: longMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nat, cc := serveNatives(t)
			stream, r := nat.openStream(t, testContext(t, 20*time.Second), cc)
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				if tc.respond {
					if err := r.st.SendMsg(marshal(&discoveryv3.DiscoveryResponse{Nonce: "1"})); err != nil {
						t.Errorf("SendMsg: %v", err)
					}
				}
				r.st.Finish(tc.err)
				r.st.Finish(status.Error(codes.Internal, "second Finish must be a no-op"))
			}()
			if tc.respond {
				if resp, err := recvTimeout(t, stream.Recv); err != nil || resp.GetNonce() != "1" {
					t.Fatalf("Recv of the response before Finish: got %v, %v", resp, err)
				}
			}
			_, err := recvTimeout(t, stream.Recv)
			if tc.wantEOF {
				if err != io.EOF {
					t.Errorf("Recv after Finish(nil): got %v, want io.EOF", err)
				}
			} else {
				wantCode(t, "Recv after Finish", err, tc.wantCode, tc.wantMsg)
			}
			<-finished
			r.waitClosed(t, "after Finish")
			if r.st.Context().Err() == nil {
				t.Errorf("Stream.Context() not done after Finish")
			}
			if err := r.st.SendMsg([]byte{}); err == nil {
				t.Errorf("SendMsg after Finish succeeded, want an error")
			}
		})
	}
}

// TestFinishBeforeOpenReturns: a stream finished before its OpenFunc returned (by the
// OpenFunc itself, or by a goroutine it started that ran first) still has its receiver
// closed, as Receiver's contract says: Close is called once when the stream ends, for any
// reason.
func TestFinishBeforeOpenReturns(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(st *Stream)
	}{
		{"Finish inside OpenFunc", func(st *Stream) {
			st.Finish(status.Error(codes.InvalidArgument, "bad node"))
		}},
		{"Finish by a goroutine OpenFunc started", func(st *Stream) {
			finished := async(func() error { // e.g. a sender that fails at once
				st.Finish(status.Error(codes.InvalidArgument, "bad node"))
				return nil
			})
			receive(finished, wait) // the scheduler may well run that goroutine before OpenFunc returns
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rcv *recorder
			ts := startServer(t, func(s *Server) {
				s.HandleStream(sotwMethod, func(st *Stream) (Receiver, error) {
					rcv = newRecorder(st, 16)
					tc.open(st)
					return rcv, nil
				})
			})
			cc := dial(t, ts.addr)
			stream := openSotw(t, testContext(t, 20*time.Second), cc)
			if err := stream.Send(request(1)); err != nil && err != io.EOF {
				t.Fatalf("Send: %v", err)
			}
			_, err := recvTimeout(t, stream.Recv)
			wantCode(t, "Recv", err, codes.InvalidArgument, "bad node")
			ts.stop(t) // every stream has ended now, and the connection goroutine is gone
			if rcv == nil {
				t.Fatalf("OpenFunc was not called")
			}
			if c := rcv.closes.Load(); c != 1 {
				t.Errorf("Receiver.Close called %d times, want once: the stream ended before OpenFunc returned, and its receiver was never closed", c)
			}
			if n := len(rcv.msgs); n != 0 {
				t.Errorf("the receiver of a finished stream got %d messages", n)
			}
		})
	}
}

// TestReceiverError: an error from Receiver.Message ends the stream with its status, closes
// the receiver, and no message follows.
func TestReceiverError(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		wantCode codes.Code
		wantMsg  string
	}{
		{"status", status.Error(codes.PermissionDenied, "not your node"), codes.PermissionDenied, "not your node"},
		{"plain error", errors.New("cannot decode"), codes.Unknown, "cannot decode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const failAt = 2
			nat := newNatives(t)
			nat.onMsg = func(r *recorder, n int, b []byte) error {
				if n == failAt {
					return tc.err
				}
				return nil
			}
			ts := startServer(t, nat.register)
			cc := dial(t, ts.addr)
			stream := openSotw(t, testContext(t, 20*time.Second), cc)
			for i := range failAt + 3 { // requests after the failing one are dropped, or fail to send
				if err := stream.Send(request(i + 1)); err != nil {
					break
				}
			}
			_, err := recvTimeout(t, stream.Recv)
			wantCode(t, "Recv", err, tc.wantCode, tc.wantMsg)
			r := nat.next(t)
			r.waitClosed(t, "after Message failed")
			if r.st.Context().Err() == nil {
				t.Errorf("Stream.Context() not done after Message failed")
			}
			if n := len(r.msgs); n != failAt {
				t.Errorf("receiver kept %d messages, want the %d before the failing one", n, failAt)
			}
		})
	}
}
