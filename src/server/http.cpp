// SPDX-License-Identifier: MIT
#include "server/http.h"

#include <algorithm>
#include <array>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "base/error.h"

namespace ds::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using std::chrono::seconds;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += char(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Status line and headers; `length` < 0: no Content-Length (chunked or ended by close).
std::string head_block(int status, const HttpHeaders& headers, bool keep_alive, bool http10, long long length,
                       bool chunked) {
  const auto reason = bhttp::obsolete_reason(bhttp::int_to_status(unsigned(status)));
  std::string out = "HTTP/1.1 " + std::to_string(status) + ' ' + std::string(reason.data(), reason.size()) + "\r\n";
  for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
  if (length >= 0) out += "Content-Length: " + std::to_string(length) + "\r\n";
  if (chunked) out += "Transfer-Encoding: chunked\r\n";
  if (!keep_alive) out += "Connection: close\r\n";
  else if (http10) out += "Connection: keep-alive\r\n";
  return out + "\r\n";
}

struct Session;

}  // namespace

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (iequals(k, name)) return v;
  return {};
}

bool HttpRequest::has_header(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.first, name)) return true;
  return false;
}

struct HttpServer::Impl {
  HttpOptions opt;
  Handler handler;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  bool is_loopback = false;
  // I/O thread only:
  bool stopping = false;
  std::set<Session*> sessions;
  // The worker pool. Idle workers wait on their own condition variables, and a job wakes the one that went idle last:
  // sequential requests then run on one thread, and so allocate from one malloc arena (each thread that handles a
  // large answer otherwise keeps a few MB in an arena of its own, and RSS grows with the number of threads used).
  struct Worker {
    std::condition_variable cv;
    bool woken = false;
  };
  std::mutex qm;
  std::deque<std::function<void()>> jobs;
  std::vector<Worker*> idle;  // a stack: the last one idle is woken first
  bool quit = false;

  Impl(HttpOptions o, Handler h) : opt(std::move(o)), handler(std::move(h)) {}
  std::string error_body(int status, const std::string& msg) const {
    return opt.error_body ? opt.error_body(status, msg) : "{\"error\":\"" + msg + "\"}";
  }
  void accept();
  void post_job(std::function<void()> job) {
    std::lock_guard<std::mutex> lk(qm);
    jobs.push_back(std::move(job));
    if (!idle.empty()) {
      Worker* w = idle.back();
      idle.pop_back();
      w->woken = true;
      w->cv.notify_one();
    }
  }
  void worker() {
    Worker self;
    std::unique_lock<std::mutex> lk(qm);
    while (true) {
      if (!jobs.empty()) {
        std::function<void()> job = std::move(jobs.front());
        jobs.pop_front();
        lk.unlock();
        job();
        job = nullptr;
        lk.lock();
        continue;
      }
      if (quit) return;
      self.woken = false;
      idle.push_back(&self);
      self.cv.wait(lk, [&] { return self.woken || quit; });
      if (!self.woken) idle.erase(std::find(idle.begin(), idle.end(), &self));
    }
  }
  void stop_workers() {
    std::lock_guard<std::mutex> lk(qm);
    quit = true;
    for (Worker* w : idle) w->cv.notify_one();
  }
  void session_closed(Session* s) {
    sessions.erase(s);
    if (stopping && sessions.empty()) guard.reset();  // serve()'s io.run() returns once the last handlers ran
  }
};

namespace {

// One connection. Reads (and the error answers of the transport itself) run on the I/O thread; while a handler runs
// on a worker, the connection reads nothing (pipelined requests wait in `buf`) and the worker's writes are posted to
// the I/O thread, each with a deadline, and waited for.
struct Session : std::enable_shared_from_this<Session>, HttpResponder {
  HttpServer::Impl& srv;
  const HttpOptions& opt;
  beast::tcp_stream stream;
  beast::flat_buffer buf{1u << 20};
  asio::steady_timer idle_timer;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser;
  std::string remote;
  int served = 0;
  bool closed = false, in_handler = false, header_checked = false, waiting = false;
  std::array<char, 16384> drain{};
  size_t drained = 0;
  // The request a handler answers (touched by the worker while in_handler).
  HttpRequest req;
  bool keep = false, head = false, http10 = false, started_ = false, streaming = false, chunked = false, ended = false;
  bool broken = false;

  Session(HttpServer::Impl& s, tcp::socket sock)
      : srv(s), opt(s.opt), stream(std::move(sock)), idle_timer(s.io) {}

  void start() {
    beast::error_code ec;
    stream.socket().set_option(tcp::no_delay(true), ec);
    if (opt.send_buffer_bytes > 0) stream.socket().set_option(asio::socket_base::send_buffer_size(opt.send_buffer_bytes), ec);
    const auto ep = stream.socket().remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string();
    stream.expires_after(seconds(opt.read_timeout_s));  // the first request: from accept
    next_request(true);
  }

  void next_request(bool first) {
    if (srv.stopping || served >= opt.keep_alive_max) return close();
    parser.emplace();
    parser->header_limit(uint32_t(std::min<size_t>(opt.max_header_bytes, UINT32_MAX)));
    parser->body_limit(uint64_t(opt.max_body_bytes));
    header_checked = false;
    if (first) return read();
    if (buf.size() > 0) {  // pipelined: the next request has begun already
      stream.expires_after(seconds(opt.read_timeout_s));
      return read();
    }
    // Idle between requests: wait keep_alive_s for the next request's first byte, then give it read_timeout_s in all.
    waiting = true;
    idle_timer.expires_after(seconds(opt.keep_alive_s));
    idle_timer.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && self->waiting) self->close();
    });
    stream.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      self->waiting = false;
      self->idle_timer.cancel();
      if (ec || self->closed) return self->close();
      self->stream.expires_after(seconds(self->opt.read_timeout_s));
      self->read();
    });
  }

  void read() {
    bhttp::async_read_some(stream, buf, *parser,
                           [self = shared_from_this()](beast::error_code ec, size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (closed) return;
    if (ec == bhttp::error::body_limit)
      return fail(413, "the request body is larger than " + std::to_string(opt.max_body_bytes) + " bytes");
    if (ec == bhttp::error::header_limit) {
      // The request line is parsed as soon as it is whole: no target yet means the request line is what is too long.
      const size_t target = parser->get().target().size();
      if (target == 0 || target > opt.max_uri_bytes)
        return fail(414, "the request URI is longer than " + std::to_string(opt.max_uri_bytes) + " bytes");
      return fail(431, "the request header section is larger than " + std::to_string(opt.max_header_bytes) + " bytes");
    }
    if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
        ec == asio::error::eof || ec == asio::error::operation_aborted || ec == asio::error::connection_reset)
      return close();
    if (ec) return fail(400, "malformed HTTP request");
    if (parser->is_header_done() && !header_checked) {
      header_checked = true;
      if (!check_header()) return;
    }
    if (!parser->is_done()) return read();
    dispatch();
  }

  // Limits that need the parsed header; false when the connection was answered with an error. Sends 100 Continue
  // when the client waits for it.
  bool check_header() {
    const auto& h = parser->get();
    if (h.target().size() > opt.max_uri_bytes) {
      fail(414, "the request URI is longer than " + std::to_string(opt.max_uri_bytes) + " bytes");
      return false;
    }
    if (size_t(std::distance(h.begin(), h.end())) > opt.max_headers) {
      fail(431, "more than " + std::to_string(opt.max_headers) + " request headers");
      return false;
    }
    // A request without Content-Length or chunked encoding has no body (RFC 9112 6.3): a POST that sends one anyway,
    // ended by half-close, would otherwise be read as garbage requests. Refuse it before reading anything.
    const auto m = h.method();
    if ((m == bhttp::verb::post || m == bhttp::verb::put || m == bhttp::verb::patch) && !parser->content_length() &&
        !parser->chunked()) {
      fail(411, "a request body needs a Content-Length header (or chunked Transfer-Encoding)");
      return false;
    }
    if (h.version() == 11 && !parser->is_done() && iequals(h[bhttp::field::expect], "100-continue")) {
      static const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
      // The request's deadline stays as it is (no expires_after): it covers this write too.
      asio::async_write(stream, asio::buffer(kContinue, sizeof kContinue - 1),
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec) return self->close();
                          self->read();
                        });
      return false;
    }
    return true;
  }

  void dispatch() {
    auto msg = parser->release();
    parser.reset();
    req = HttpRequest{};
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    const size_t q = req.target.find('?');
    req.path = percent_decode(std::string_view(req.target).substr(0, q));
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    req.version = int(msg.version());
    for (const auto& f : msg) req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    req.body = std::move(msg.body());
    req.remote = remote;
    http10 = msg.version() == 10;
    keep = msg.keep_alive() && served + 1 < opt.keep_alive_max && !srv.stopping;
    head = msg.method() == bhttp::verb::head;
    started_ = streaming = chunked = ended = broken = false;
    in_handler = true;
    srv.post_job([s = shared_from_this()]() mutable {
      Session* p = s.get();
      p->run_handler(std::move(s));
    });
  }

  // On a worker.
  void run_handler(std::shared_ptr<Session> self) {
    try {
      srv.handler(req, *this);
    } catch (...) {
      if (started_) broken = true;
    }
    if (!started_ && !broken)
      send(500, {{"Content-Type", "application/json"}}, srv.error_body(500, "internal error"));
    if (streaming && !ended) broken = true;  // an unfinished body cannot be followed by another response
    auto exec = stream.get_executor();
    asio::post(exec, [s = std::move(self)] { s->after_handler(); });
  }

  void after_handler() {
    in_handler = false;
    req = HttpRequest{};  // frees the body now, not at the next request
    if (broken) return close();
    if (!keep || srv.stopping) return linger();
    ++served;
    next_request(false);
  }

  // Worker side: posts one async write with the write deadline to the I/O thread and waits for it.
  bool write_bufs(const std::vector<asio::const_buffer>& bufs) {
    if (broken) return false;
    std::promise<beast::error_code> done;
    auto f = done.get_future();
    asio::post(stream.get_executor(), [this, &bufs, &done] {
      if (closed) return done.set_value(asio::error::not_connected);
      stream.expires_after(seconds(opt.write_timeout_s));
      asio::async_write(stream, bufs, [&done](beast::error_code ec, size_t) { done.set_value(ec); });
    });
    if (f.get()) broken = true;
    return !broken;
  }

  bool send(int status, const HttpHeaders& headers, std::string_view body) override {
    if (started_) return false;
    started_ = true;
    // 204 and 304 carry no body and no Content-Length (RFC 9110 8.6).
    const bool bodyless = status == 204 || status == 304 || (status >= 100 && status < 200);
    const std::string h = head_block(status, headers, keep, http10, bodyless ? -1 : (long long)body.size(), false);
    if (head || bodyless || body.empty()) return write_bufs({asio::buffer(h)});
    return write_bufs({asio::buffer(h), asio::buffer(body.data(), body.size())});
  }

  bool begin(int status, const HttpHeaders& headers) override {
    if (started_) return false;
    started_ = streaming = true;
    chunked = !http10;
    if (http10) keep = false;  // HTTP/1.0 has no chunked encoding: the body ends with the connection
    return write_bufs({asio::buffer(head_block(status, headers, keep, http10, -1, chunked))});
  }

  bool write(std::string_view data) override {
    if (!streaming || ended || broken) return false;
    if (head || data.empty()) return true;  // an empty chunk would end the body
    if (!chunked) return write_bufs({asio::buffer(data.data(), data.size())});
    char size[24];
    const int k = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    return write_bufs({asio::buffer(size, size_t(k)), asio::buffer(data.data(), data.size()), asio::buffer("\r\n", 2)});
  }

  bool finish() override {
    if (!streaming || ended || broken) return false;
    ended = true;
    if (head || !chunked) return true;
    return write_bufs({asio::buffer("0\r\n\r\n", 5)});
  }

  bool started() const override { return started_; }

  // The transport's own error answer, then a lingering close.
  void fail(int status, const std::string& msg) {
    auto text = std::make_shared<std::string>(srv.error_body(status, msg));
    *text = head_block(status, {{"Content-Type", "application/json"}}, false, false, (long long)text->size(), false) +
            *text;
    stream.expires_after(seconds(opt.write_timeout_s));
    asio::async_write(stream, asio::buffer(*text), [self = shared_from_this(), text](beast::error_code ec, size_t) {
      if (ec) return self->close();
      self->linger();
    });
  }

  // Half-close, then read and drop what the client still sends for at most 2 s (nothing is kept), so that closing
  // does not reset the connection before the client has read the answer.
  void linger() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.expires_after(seconds(2));
    drained = 0;
    drain_some();
  }
  void drain_some() {
    stream.async_read_some(asio::buffer(drain), [self = shared_from_this()](beast::error_code ec, size_t n) {
      self->drained += n;
      if (ec) return self->close();
      self->drain_some();
    });
  }

  void close() {
    if (closed) return;
    closed = true;
    waiting = false;
    idle_timer.cancel();
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
    srv.session_closed(this);
  }
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(io, [this](beast::error_code ec, tcp::socket sock) {
    if (stopping || !acceptor.is_open()) return;
    if (ec) {  // e.g. out of file descriptors: try again shortly instead of spinning
      accept_retry.expires_after(std::chrono::milliseconds(50));
      accept_retry.async_wait([this](beast::error_code e) {
        if (!e && !stopping) accept();
      });
      return;
    }
    if (sessions.size() >= size_t(opt.max_connections)) {
      beast::error_code e;
      sock.close(e);  // at the cap: refuse at once, so descriptors cannot run out
    } else {
      auto s = std::make_shared<Session>(*this, std::move(sock));
      sessions.insert(s.get());
      s->start();
    }
    accept();
  });
}

HttpServer::HttpServer(HttpOptions opt, Handler handler)
    : impl_(std::make_shared<Impl>(std::move(opt), std::move(handler))) {}

HttpServer::~HttpServer() = default;

int HttpServer::bind(const std::string& host, int port) {
  Impl& m = *impl_;
  beast::error_code ec;
  tcp::resolver res(m.io);
  const auto eps = res.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  DS_CHECK(!ec && !eps.empty(), "cannot bind to ", host, ":", port, ": ", ec ? ec.message() : "no address");
  std::string why;
  for (const auto& e : eps) {
    const tcp::endpoint ep = e.endpoint();
    m.acceptor.close(ec);
    m.acceptor.open(ep.protocol(), ec);
    if (ec) { why = ec.message(); continue; }
    m.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    m.acceptor.bind(ep, ec);
    if (ec) { why = ec.message(); continue; }
    m.acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) { why = ec.message(); continue; }
    m.is_loopback = ep.address().is_loopback();
    return m.acceptor.local_endpoint().port();
  }
  DS_CHECK(false, "cannot bind to ", host, ":", port, " (", why, ": in use, or not an address of this machine)");
  return -1;
}

bool HttpServer::loopback() const { return impl_->is_loopback; }

void HttpServer::serve() {
  Impl& m = *impl_;
  m.guard.emplace(m.io.get_executor());
  std::vector<std::thread> workers;
  for (int i = 0; i < std::max(1, m.opt.threads); ++i) workers.emplace_back([&m] { m.worker(); });
  if (!m.stopping) m.accept();
  m.io.run();
  m.stop_workers();
  for (auto& t : workers) t.join();
}

void HttpServer::stop() {
  Impl* m = impl_.get();
  asio::post(m->io, [m] {
    if (m->stopping) return;
    m->stopping = true;
    beast::error_code ec;
    m->acceptor.close(ec);
    m->accept_retry.cancel();
    std::vector<std::shared_ptr<Session>> idle;
    for (Session* s : m->sessions)
      if (!s->in_handler) idle.push_back(s->shared_from_this());
    for (auto& s : idle) s->close();
    if (m->sessions.empty()) m->guard.reset();
  });
}

int http_request(const std::string& host, int port, const std::string& method, const std::string& target,
                 const HttpHeaders& headers, const std::string& body,
                 const std::function<void(std::string_view)>& on_data, std::string* error) {
  auto failed = [&](const std::string& what, const beast::error_code& ec) {
    if (error) *error = what + ": " + ec.message();
    return -1;
  };
  asio::io_context io;
  tcp::resolver res(io);
  beast::tcp_stream s(io);
  beast::error_code ec;
  const auto eps = res.resolve(host, std::to_string(port), ec);
  if (ec) return failed("resolve " + host, ec);
  s.connect(eps, ec);
  if (ec) return failed("connect", ec);
  bhttp::request<bhttp::string_body> rq{bhttp::string_to_verb(method), target, 11};
  rq.set(bhttp::field::host, host + ":" + std::to_string(port));
  for (const auto& [k, v] : headers) rq.set(k, v);
  rq.body() = body;
  rq.prepare_payload();
  bhttp::write(s, rq, ec);
  if (ec) return failed("write", ec);
  beast::flat_buffer b;
  bhttp::response_parser<bhttp::buffer_body> p;
  p.body_limit(boost::none);
  bhttp::read_header(s, b, p, ec);
  if (ec) return failed("read", ec);
  const int status = int(p.get().result_int());
  std::array<char, 65536> tmp;
  while (!p.is_done()) {
    p.get().body().data = tmp.data();
    p.get().body().size = tmp.size();
    bhttp::read_some(s, b, p, ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    if (ec) return failed("read", ec);
    const size_t n = tmp.size() - p.get().body().size;
    if (n && on_data) on_data(std::string_view(tmp.data(), n));
  }
  s.socket().shutdown(tcp::socket::shutdown_both, ec);
  return status;
}

}  // namespace ds::server
