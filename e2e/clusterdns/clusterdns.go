// Package clusterdns is a stand-in for a cluster's DNS (CoreDNS with its
// kubernetes plugin), for pods on the test's real node: it answers A
// queries for <service>.<namespace>.svc.<domain> with the Service's
// ClusterIP, read from the apiserver, and NXDOMAIN for every other name.
// It forwards nothing, so a pod's lookups never leave the machine. Only
// ClusterIP Services are known: no headless Services, pod records, SRV
// records or TCP.
package clusterdns

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Server answers DNS queries over UDP.
type Server struct {
	conn   net.PacketConn
	c      client.Reader
	suffix string
	wg     sync.WaitGroup
}

// lookupTimeout bounds one Service read; resolvers retry after a few seconds.
const lookupTimeout = 2 * time.Second

// Start listens on addr (UDP) and answers for the Services c reads, under
// the cluster domain (e.g. cluster.local).
func Start(addr string, c client.Reader, domain string) (*Server, error) {
	if domain == "" {
		return nil, errors.New("clusterdns: no cluster domain")
	}
	conn, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{conn: conn, c: c, suffix: ".svc." + strings.ToLower(strings.Trim(domain, ".")) + "."}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr is where the server listens.
func (s *Server) Addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close stops the server and waits for the queries in flight.
func (s *Server) Close() error {
	err := s.conn.Close()
	s.wg.Wait()
	return err
}

func (s *Server) serve() {
	defer s.wg.Done()
	buf := make([]byte, 512)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		query := append([]byte(nil), buf[:n]...)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if answer, err := s.answer(query); err == nil {
				_, _ = s.conn.WriteTo(answer, from)
			}
		}()
	}
}

// answer builds the response to one query; malformed queries get none.
func (s *Server) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	rcode, ip := dnsmessage.RCodeNameError, netip.Addr{}
	if a, ok := s.lookup(q.Name.String()); ok {
		rcode, ip = dnsmessage.RCodeSuccess, a
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{
		ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RCode: rcode,
	})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	// A known name has no records of other types: NOERROR with no answer.
	if ip.IsValid() && q.Type == dnsmessage.TypeA && q.Class == dnsmessage.ClassINET {
		if err := b.StartAnswers(); err != nil {
			return nil, err
		}
		rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 5}
		if err := b.AResource(rh, dnsmessage.AResource{A: ip.As4()}); err != nil {
			return nil, err
		}
	}
	return b.Finish()
}

// lookup finds the ClusterIP of <service>.<namespace>.svc.<domain>.
func (s *Server) lookup(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(strings.ToLower(name), s.suffix)
	if !ok {
		return netip.Addr{}, false
	}
	svcName, ns, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(ns, ".") {
		return netip.Addr{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	var svc corev1.Service
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: svcName}, &svc); err != nil {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !ip.Is4() {
		return netip.Addr{}, false
	}
	return ip, true
}
