// SPDX-License-Identifier: MIT
#include "server/web_page.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <mutex>

namespace ds::server {

namespace web {  // generated from web/dist/index.html by web/embed.cpp (gzip)
extern const unsigned char kIndexGz[];
extern const size_t kIndexGzSize, kIndexSize;
extern const char kIndexEtag[];
}  // namespace web

namespace {

// Accept-Encoding lists gzip (or *) with a non-zero quality.
bool accepts_gzip(const std::string& header) {
  size_t pos = 0;
  while (pos <= header.size()) {
    size_t end = header.find(',', pos);
    if (end == std::string::npos) end = header.size();
    std::string item = header.substr(pos, end - pos);
    pos = end + 1;
    const size_t semi = item.find(';');
    std::string name = item.substr(0, semi);
    name.erase(0, name.find_first_not_of(" \t"));
    name.erase(name.find_last_not_of(" \t") + 1);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (name != "gzip" && name != "x-gzip" && name != "*") continue;
    double q = 1.0;
    if (semi != std::string::npos) {
      const size_t qp = item.find("q=", semi);
      if (qp != std::string::npos) q = std::atof(item.c_str() + qp + 2);
    }
    if (q > 0) return true;
  }
  return false;
}

// The page for clients that do not take gzip (curl without --compressed): inflated once, on first use.
const std::string& inflated() {
  static std::string page;
  static std::once_flag once;
  std::call_once(once, [] {
    std::string out(web::kIndexSize, '\0');
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK) return;
    z.next_in = const_cast<Bytef*>(web::kIndexGz);
    z.avail_in = uInt(web::kIndexGzSize);
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = uInt(out.size());
    const int rc = inflate(&z, Z_FINISH);
    inflateEnd(&z);
    if (rc == Z_STREAM_END && z.total_out == out.size()) page = std::move(out);
  });
  return page;
}

}  // namespace

bool is_web_page(const std::string& method, const std::string& path) {
  return (method == "GET" || method == "HEAD") && (path == "/" || path == "/index.html");
}

WebPageResponse web_page(const HttpRequest& req) {
  WebPageResponse res;
  res.headers = {{"ETag", web::kIndexEtag},
                 {"Cache-Control", "no-cache"},  // revalidate: a new binary may carry a new page
                 {"Vary", "Accept-Encoding"},
                 {"X-Content-Type-Options", "nosniff"},
                 // The page's own <meta> CSP covers scripts and fetches; framing can only be refused by a header.
                 {"Content-Security-Policy", "frame-ancestors 'none'"},
                 {"Referrer-Policy", "no-referrer"}};
  if (req.header("If-None-Match") == web::kIndexEtag) {
    res.status = 304;
    return res;
  }
  if (accepts_gzip(req.header("Accept-Encoding"))) {
    res.headers.emplace_back("Content-Encoding", "gzip");
    res.body = std::string_view(reinterpret_cast<const char*>(web::kIndexGz), web::kIndexGzSize);
  } else {
    const std::string& page = inflated();
    if (page.empty()) {
      res.status = 500;
      res.headers = {{"Content-Type", "text/plain"}};
      res.body = "the embedded page is corrupt";
      return res;
    }
    res.body = page;
  }
  res.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
  return res;
}

}  // namespace ds::server
