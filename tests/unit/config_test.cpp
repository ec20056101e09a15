#include "shotsync/config.hpp"

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include "temp_dir.hpp"

using shotsync::EnvFn;

namespace {

EnvFn FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const char* kGood = R"(state_dir = "~/state"
jobs = 4
[shootbin]
base_url = "http://127.0.0.1:8080"
rpm = 120
[headshotpro]
base_url = "http://127.0.0.1:8080/api/v2"
dest = "~/heads"
[[roots]]
path = "~/Photos/Exports/"
project = "Client Smith"
album = "Selects"
create = true
ignore = ["*.xmp", ".DS_Store"]
)";

}  // namespace

TEST_CASE("a complete config is read with ~ expanded and tokens from the environment", "[config]") {
  auto env = FakeEnv({{"HOME", "/home/ann"}, {"SHOOTBIN_API_TOKEN", "sb-secret"},
                      {"HEADSHOTPRO_API_KEY", "hp-secret"}});
  auto c = shotsync::ParseConfig(kGood, "cfg.toml", env);
  REQUIRE(c.ok());
  CHECK(c->state_dir == "/home/ann/state");
  CHECK(c->ManifestPath() == "/home/ann/state/manifest.db");
  CHECK(c->jobs == 4);
  CHECK(c->shootbin.rpm == 120);
  CHECK(c->shootbin.token == "sb-secret");
  CHECK(c->shootbin.token_source == "SHOOTBIN_API_TOKEN");
  CHECK(c->headshotpro.key == "hp-secret");
  CHECK(c->headshotpro.rpm == 300);
  CHECK(c->headshotpro.dest == "/home/ann/heads");
  REQUIRE(c->roots.size() == 1);
  CHECK(c->roots[0].path == "/home/ann/Photos/Exports");
  CHECK(c->roots[0].project == "Client Smith");
  CHECK(c->roots[0].create);
  CHECK(c->roots[0].ignore == std::vector<std::string>{"*.xmp", ".DS_Store"});
}

TEST_CASE("unknown keys, wrong types and bad values name the file and line", "[config]") {
  auto env = FakeEnv({{"HOME", "/h"}});
  auto check = [&](const std::string& text, const std::string& expect) {
    auto c = shotsync::ParseConfig(text, "my.toml", env);
    REQUIRE_FALSE(c.ok());
    CHECK(c.status().code() == shotsync::Code::kInvalidArgument);
    INFO(c.status().message());
    CHECK(c.status().message().find(expect) != std::string::npos);
  };
  check("jobs = 4\ncolour = 1\n", "my.toml:2: unknown key 'colour'");
  check("jobs = \"four\"\n", "my.toml:1: 'jobs' must be an integer");
  check("jobs = 0\n", "my.toml:1: 'jobs' must be between 1 and 64");
  check("[shootbin]\nrpm = -5\n", "my.toml:2: 'shootbin.rpm' must be between");
  check("[shootbin]\nbase_url = \"ftp://x\"\n", "my.toml:2: shootbin.base_url must start with https://");
  check("[[roots]]\npath = \"relative/dir\"\nproject = \"P\"\nalbum = \"A\"\n", "my.toml:2: roots.path must be absolute");
  check("[[roots]]\npath = \"/p\"\nalbum = \"A\"\n", "needs a 'project'");
  check("[headshotpro]\ninclude = \"some\"\n", "my.toml:2: 'headshotpro.include'");
  check("jobs = [\n", "my.toml:");
  check("stall_timeout = 0\n", "my.toml:1: 'stall_timeout' must be between 1 and 3600");
  check("[watch]\nsettle = \"soon\"\n", "my.toml:2: 'watch.settle' must be a duration");
  check("[watch]\nrescan_interval = \"5s\"\n", "my.toml:2: 'watch.rescan_interval' must be 0 (off) or at least 10 seconds");
  check("[watch]\npoll_interval = 30\n", "my.toml:2: 'watch.poll_interval' must be 0 (off) or at least 60 seconds");
  check("[watch]\nmetrics_listen = \"8787\"\n", "my.toml:2: 'watch.metrics_listen' must be HOST:PORT");
  check("[watch]\ncolour = 1\n", "my.toml:2: unknown key 'watch.colour'");
  check("[headshotpro]\nwebhook_listen = \"::1:8787\"\n", "'headshotpro.webhook_listen' must be HOST:PORT");
}

TEST_CASE("[watch] durations take rclone's spellings, off or seconds, and the webhook secret comes from the environment",
          "[config]") {
  auto env = FakeEnv({{"HOME", "/h"}, {"HEADSHOTPRO_WEBHOOK_SECRET", "whsec-0123"}});
  auto c = shotsync::ParseConfig(
      "[headshotpro]\nwebhook_listen = \"[::1]:8787\"\n[watch]\nsettle = \"250ms\"\nrescan_interval = \"off\"\n"
      "poll_interval = \"1h30m\"\nmetrics_listen = \"127.0.0.1:9100\"\n",
      "my.toml", env);
  REQUIRE(c.ok());
  CHECK(c->watch.settle_s == Approx(0.25));
  CHECK(c->watch.rescan_interval_s == 0);
  CHECK(c->watch.poll_interval_s == 5400);
  CHECK(c->watch.metrics_listen == "127.0.0.1:9100");
  CHECK(c->headshotpro.webhook_listen == "[::1]:8787");
  CHECK(c->headshotpro.webhook_secret == "whsec-0123");
  CHECK(c->headshotpro.webhook_secret_source == "HEADSHOTPRO_WEBHOOK_SECRET");
  auto defaults = shotsync::ParseConfig("", "my.toml", env);
  REQUIRE(defaults.ok());
  CHECK(defaults->watch.settle_s == 1);
  CHECK(defaults->watch.rescan_interval_s == 3600);
  CHECK(defaults->watch.poll_interval_s == 3600);
  CHECK(defaults->headshotpro.webhook_secret == "whsec-0123");  // no [headshotpro] table: the environment still counts
  const auto at = shotsync::ParseListenAddress("[::1]:8787");
  REQUIRE(at);
  CHECK(at->host == "::1");
  CHECK(at->port == 8787);
  CHECK(!shotsync::ParseListenAddress("127.0.0.1:65536"));
  CHECK(!shotsync::ParseListenAddress("127.0.0.1:"));
  CHECK(!shotsync::ParseListenAddress(":8787"));
}

TEST_CASE("a token written into the config is refused without echoing it", "[config]") {
  auto env = FakeEnv({{"HOME", "/h"}});
  auto c = shotsync::ParseConfig("[shootbin]\ntoken = \"sb-secret-123456\"\n", "my.toml", env);
  REQUIRE_FALSE(c.ok());
  CHECK(c.status().message().find("my.toml:2: 'shootbin.token': secrets are not read from the config file") !=
        std::string::npos);
  CHECK(c.status().message().find("sb-secret-123456") == std::string::npos);
}

TEST_CASE("a token file readable by others is refused, a private one is used", "[config]") {
  shotsync::testing::TempDir dir;
  const auto file = (dir.path() / "token").string();
  std::ofstream(file) << "sb-from-file\n";
  ::chmod(file.c_str(), 0644);
  auto env = FakeEnv({{"HOME", "/h"}});
  const std::string text = "[shootbin]\ntoken_file = \"" + file + "\"\n";
  auto refused = shotsync::ParseConfig(text, "c.toml", env);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().message().find("readable by others") != std::string::npos);
  CHECK(refused.status().message().find("sb-from-file") == std::string::npos);
  ::chmod(file.c_str(), 0600);
  auto ok = shotsync::ParseConfig(text, "c.toml", env);
  REQUIRE(ok.ok());
  CHECK(ok->shootbin.token == "sb-from-file");
  CHECK(ok->shootbin.token_source == file);
}

TEST_CASE("the config file is found by flag, then SHOTSYNC_CONFIG, then XDG_CONFIG_HOME", "[config]") {
  shotsync::testing::TempDir dir;
  std::filesystem::create_directories(dir.path() / "xdg/shotsync");
  const auto xdg_file = (dir.path() / "xdg/shotsync/config.toml").string();
  std::ofstream(xdg_file) << "jobs = 2\n";
  auto env = FakeEnv({{"XDG_CONFIG_HOME", (dir.path() / "xdg").string()}});
  CHECK(shotsync::FindConfigFile(std::string("/flag.toml"), env) == "/flag.toml");
  CHECK(shotsync::FindConfigFile(std::nullopt, env) == xdg_file);
  auto env2 = FakeEnv({{"SHOTSYNC_CONFIG", "/env.toml"}, {"XDG_CONFIG_HOME", (dir.path() / "xdg").string()}});
  CHECK(shotsync::FindConfigFile(std::nullopt, env2) == "/env.toml");
  CHECK_FALSE(shotsync::FindConfigFile(std::nullopt, FakeEnv({{"HOME", dir.path().string()}})).has_value());
}

TEST_CASE("project and album as TOML integers are ids, strings still work", "[config]") {
  auto env = FakeEnv({{"HOME", "/h"}});
  auto c = shotsync::ParseConfig(R"([[roots]]
path = "/a"
project = 12
album = 7
[[roots]]
path = "/b"
project = "12"
album = "Selects"
[[roots]]
path = "/c"
project = "Client Smith"
album = 3
)",
                                 "c.toml", env);
  INFO(c.status().message());
  REQUIRE(c.ok());
  REQUIRE(c->roots.size() == 3);
  CHECK(c->roots[0].project == "12");
  CHECK(c->roots[0].album == "7");
  CHECK(c->roots[1].project == "12");
  CHECK(c->roots[1].album == "Selects");
  CHECK(c->roots[2].project == "Client Smith");
  CHECK(c->roots[2].album == "3");

  auto check = [&](const std::string& text, const std::string& expect) {
    auto bad = shotsync::ParseConfig(text, "my.toml", env);
    REQUIRE_FALSE(bad.ok());
    INFO(bad.status().message());
    CHECK(bad.status().message().find(expect) != std::string::npos);
  };
  check("[[roots]]\npath = \"/a\"\nproject = 0\nalbum = 1\n",
        "my.toml:3: 'roots.project' must be a positive id or a name");
  check("[[roots]]\npath = \"/a\"\nproject = 1\nalbum = -4\n",
        "my.toml:4: 'roots.album' must be a positive id or a name");
  check("[[roots]]\npath = \"/a\"\nproject = 1.5\nalbum = 1\n",
        "my.toml:3: 'roots.project' must be an id (12) or a name");
  check("[[roots]]\npath = \"/a\"\nproject = true\nalbum = 1\n",
        "'roots.project' must be an id (12) or a name");
}

TEST_CASE("reconcile_delay defaults to 120 s (0-3600), allow_unapprove defaults to false",
          "[config]") {
  auto env = FakeEnv({{"HOME", "/h"}});
  auto d = shotsync::ParseConfig("", "c.toml", env);
  REQUIRE(d.ok());
  CHECK(d->reconcile_delay == 120);
  CHECK_FALSE(d->allow_unapprove);
  auto c = shotsync::ParseConfig("reconcile_delay = 3600\nallow_unapprove = true\n", "c.toml", env);
  REQUIRE(c.ok());
  CHECK(c->reconcile_delay == 3600);
  CHECK(c->allow_unapprove);
  CHECK(shotsync::ParseConfig("reconcile_delay = 0\n", "c.toml", env)->reconcile_delay == 0);
  auto over = shotsync::ParseConfig("reconcile_delay = 3601\n", "c.toml", env);
  REQUIRE_FALSE(over.ok());
  CHECK(over.status().message().find("c.toml:1: 'reconcile_delay' must be between 0 and 3600") !=
        std::string::npos);
  auto word = shotsync::ParseConfig("allow_unapprove = \"yes\"\n", "c.toml", env);
  REQUIRE_FALSE(word.ok());
  CHECK(word.status().message().find("c.toml:1: 'allow_unapprove' must be true or false") !=
        std::string::npos);
  auto nested = shotsync::ParseConfig("[shootbin]\nallow_unapprove = true\n", "c.toml", env);
  REQUIRE_FALSE(nested.ok());
  CHECK(nested.status().message().find("unknown key 'shootbin.allow_unapprove'") !=
        std::string::npos);
}

TEST_CASE("the README's config block parses and says what the defaults are", "[config]") {
  // tests/unit/config_test.cpp -> the source tree's README.md
  std::ifstream in(std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() /
                   "README.md");
  REQUIRE(in);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto begin = text.find("```toml\n");
  REQUIRE(begin != std::string::npos);
  const auto end = text.find("```", begin + 8);
  REQUIRE(end != std::string::npos);
  const std::string block = text.substr(begin + 8, end - begin - 8);
  CHECK(block.find("reconcile_delay = 120") != std::string::npos);
  CHECK(block.find("allow_unapprove = false") != std::string::npos);
  auto c = shotsync::ParseConfig(block, "README.md", FakeEnv({{"HOME", "/h"}}));
  INFO(c.status().message());
  REQUIRE(c.ok());
  CHECK(c->reconcile_delay == 120);
  CHECK_FALSE(c->allow_unapprove);
}

TEST_CASE("each config file has its own default state folder, named after it", "[config]") {
  auto env = FakeEnv({{"HOME", "/home/ann"}});
  const std::string body = "[shootbin]\nbase_url = \"https://studio.example.com\"\n";
  auto in_config_folder = shotsync::ParseConfig(body, "/home/ann/.config/shotsync/client-a.toml", env);
  REQUIRE(in_config_folder.ok());
  CHECK(in_config_folder->state_dir == "/home/ann/.local/state/shotsync/client-a");
  CHECK(in_config_folder->legacy_state_dir == "/home/ann/.local/state/shotsync");
  auto default_one = shotsync::ParseConfig(body, "/home/ann/.config/shotsync/config.toml", env);
  CHECK(default_one->state_dir == "/home/ann/.local/state/shotsync/config");
  // Two config.toml files elsewhere: two folders (the name carries a hash of the path).
  auto a = shotsync::ParseConfig(body, "/srv/a/config.toml", env);
  auto b = shotsync::ParseConfig(body, "/srv/b/config.toml", env);
  CHECK(a->state_dir.rfind("/home/ann/.local/state/shotsync/config-", 0) == 0);
  CHECK(a->state_dir != b->state_dir);
  CHECK(a->state_dir == shotsync::ParseConfig(body, "/srv/a/config.toml", env)->state_dir);  // stable
  auto xdg = shotsync::ParseConfig(body, "/home/ann/.config/shotsync/x.toml",
                                   FakeEnv({{"HOME", "/home/ann"}, {"XDG_STATE_HOME", "/var/state"}}));
  CHECK(xdg->state_dir == "/var/state/shotsync/x");
  auto explicit_dir = shotsync::ParseConfig("state_dir = \"/data/s\"\n" + body, "/srv/a/config.toml", env);
  CHECK(explicit_dir->state_dir == "/data/s");
  CHECK(explicit_dir->legacy_state_dir.empty());
}

TEST_CASE("http:// is refused for anything but loopback unless allow_insecure_http, named in the message",
          "[config]") {
  auto env = FakeEnv({{"HOME", "/home/ann"}});
  auto remote = shotsync::ParseConfig("[shootbin]\nbase_url = \"http://proofs.example.com\"\n", "c.toml", env);
  REQUIRE_FALSE(remote.ok());
  CHECK(remote.status().message().find("c.toml:2: shootbin.base_url is http:// to proofs.example.com") == 0);
  CHECK(remote.status().message().find("allow_insecure_http = true") != std::string::npos);
  auto allowed = shotsync::ParseConfig(
      "allow_insecure_http = true\n[shootbin]\nbase_url = \"http://proofs.example.com\"\n", "c.toml", env);
  CHECK(allowed.ok());
  for (const char* local : {"http://127.0.0.1:8080", "http://localhost/x", "http://[::1]:9000", "https://a.example"}) {
    INFO(local);
    CHECK(shotsync::ParseConfig(std::string("[shootbin]\nbase_url = \"") + local + "\"\n", "c.toml", env).ok());
  }
  auto user_info = shotsync::ParseConfig("[headshotpro]\nbase_url = \"http://127.0.0.1@evil.example/api\"\n",
                                         "c.toml", env);
  CHECK_FALSE(user_info.ok());  // the host is evil.example, whatever comes before the @
}

TEST_CASE("include defaults to the image formats Shootbin takes, on_rejected is fail or warn", "[config]") {
  auto env = FakeEnv({{"HOME", "/home/ann"}});
  const std::string root = "[[roots]]\npath = \"/p\"\nproject = \"P\"\nalbum = \"A\"\n";
  auto c = shotsync::ParseConfig(root, "c.toml", env);
  REQUIRE(c.ok());
  CHECK(c->rejected_fails);
  const auto& inc = c->roots[0].include;
  CHECK(std::find(inc.begin(), inc.end(), "*.jpg") != inc.end());
  CHECK(std::find(inc.begin(), inc.end(), "*.tiff") != inc.end());
  CHECK(std::find(inc.begin(), inc.end(), "*.cr3") == inc.end());
  auto every = shotsync::ParseConfig(root + "include = [\"*\"]\n", "c.toml", env);
  CHECK(every->roots[0].include.empty());  // no filter
  CHECK_FALSE(shotsync::ParseConfig(root + "include = []\n", "c.toml", env).ok());
  CHECK_FALSE(shotsync::ParseConfig("on_rejected = \"maybe\"\n", "c.toml", env).ok());
  CHECK_FALSE(shotsync::ParseConfig("on_rejected = \"warn\"\n", "c.toml", env)->rejected_fails);
}

TEST_CASE("bandwidth limits: rclone's spellings, off, and UP:DOWN, as a flag or the bwlimit key", "[config]") {
  using shotsync::ParseBwLimit;
  CHECK(ParseBwLimit("off")->up == 0);
  CHECK(ParseBwLimit("512k")->up == 512 * 1024);
  CHECK(ParseBwLimit("4M")->down == 4 << 20);
  CHECK(ParseBwLimit("4MiB")->up == 4 << 20);
  CHECK(ParseBwLimit("4MB")->up == 4000000);
  CHECK(ParseBwLimit("1.5M")->up == 3 << 19);
  CHECK(ParseBwLimit("100000")->up == 100000);
  auto split = ParseBwLimit("1M:off");
  REQUIRE(split);
  CHECK(split->up == 1 << 20);
  CHECK(split->down == 0);
  for (const char* bad : {"", "fast", "4X", "-1M", "1M:", ":2M", "0.0M"}) {
    INFO(bad);
    CHECK_FALSE(ParseBwLimit(bad));
  }
  auto env = FakeEnv({{"HOME", "/h"}});
  auto c = shotsync::ParseConfig("bwlimit = \"2M:8M\"\n", "c.toml", env);
  REQUIRE(c.ok());
  CHECK(c->bwlimit.up == 2 << 20);
  CHECK(c->bwlimit.down == 8 << 20);
  auto bad = shotsync::ParseConfig("bwlimit = \"lots\"\n", "c.toml", env);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("c.toml:1: 'bwlimit' must be a rate") == 0);
}
