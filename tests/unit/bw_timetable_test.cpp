// The bandwidth timetable (rclone's --bwlimit syntax, fs/bwtimetable.go):
// parsing, weekdays, wrap-around, the entry in force at a local time, and
// one-line errors naming the bad entry.
#include <catch2/catch.hpp>
#include <cmath>
#include <ctime>
#include <optional>
#include <string>

#include "shotsync/config.hpp"

using shotsync::BwLimit;
using shotsync::ParseBwLimit;

namespace {

constexpr int kDay = 24 * 60;
constexpr int Mon = 1, Sat = 6, Sun = 0;

int At(int day, int hour, int minute) {
  return day * kDay + hour * 60 + minute;
}

// Unix time of today's local hh:mm:ss on the same weekday as `wday` ahead
// (0..6 days): the timetable is read in local time, whatever TZ is.
double LocalTime(int wday, int hour, int minute, int second) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::localtime_r(&now, &tm);
  tm.tm_mday += (wday - tm.tm_wday + 7) % 7;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  tm.tm_isdst = -1;
  return double(std::mktime(&tm));
}

}  // namespace

TEST_CASE("bwlimit timetable: daily entries, in force until the next, wrapping around", "[bwlimit]") {
  auto t = ParseBwLimit("08:00,512k 12:00,10M 23:00,off");
  REQUIRE(t.ok());
  CHECK(t->timetable.size() == 21);  // each daily entry is one per weekday, as rclone's
  CHECK(t->limited());
  CHECK(t->SlotAt(At(Mon, 8, 0)).up == 512 << 10);
  CHECK(t->SlotAt(At(Mon, 11, 59)).up == 512 << 10);
  CHECK(t->SlotAt(At(Mon, 12, 0)).up == 10 << 20);
  CHECK(t->SlotAt(At(Mon, 12, 0)).down == 10 << 20);
  CHECK(t->SlotAt(At(Mon, 23, 30)).up == 0);
  CHECK(t->SlotAt(At(Mon, 3, 0)).up == 0);   // the day before's 23:00
  CHECK(t->SlotAt(At(Sun, 0, 0)).up == 0);   // wraps to Saturday 23:00
  CHECK(t->SlotAt(At(Sun, 7, 59)).up == 0);
  CHECK(t->SlotAt(At(Sun, 8, 0)).up == 512 << 10);
}

TEST_CASE("bwlimit timetable: weekdays, any case, full names, UP:DOWN per entry", "[bwlimit]") {
  auto t = ParseBwLimit("Mon-08:00,512k Sat-10:00,off");
  REQUIRE(t.ok());
  REQUIRE(t->timetable.size() == 2);
  CHECK(t->SlotAt(At(Mon, 7, 59)).up == 0);  // before the week's first entry: the last one (Sat) wraps
  CHECK(t->SlotAt(At(Mon, 8, 0)).up == 512 << 10);
  CHECK(t->SlotAt(At(5, 23, 59)).up == 512 << 10);  // Friday
  CHECK(t->SlotAt(At(Sat, 10, 0)).up == 0);
  CHECK(t->SlotAt(At(Sun, 12, 0)).up == 0);
  // Written out of week order: the entry in force is still the latest before.
  auto unordered = ParseBwLimit("Sat-10:00,off Mon-08:00,512k");
  REQUIRE(unordered.ok());
  CHECK(unordered->SlotAt(At(Sun, 12, 0)).up == 0);
  CHECK(unordered->SlotAt(At(2, 12, 0)).up == 512 << 10);

  auto names = ParseBwLimit("monday-08:00,1M SATURDAY-10:00,2M sun-00:00,3M");
  REQUIRE(names.ok());
  CHECK(names->SlotAt(At(Mon, 9, 0)).up == 1 << 20);
  CHECK(names->SlotAt(At(Sat, 11, 0)).up == 2 << 20);
  CHECK(names->SlotAt(At(Sun, 0, 0)).up == 3 << 20);

  auto split = ParseBwLimit("08:00,1M:4M 18:00,off:8MB");
  REQUIRE(split.ok());
  CHECK(split->SlotAt(At(2, 9, 0)).up == 1 << 20);
  CHECK(split->SlotAt(At(2, 9, 0)).down == 4 << 20);
  CHECK(split->SlotAt(At(2, 19, 0)).up == 0);
  CHECK(split->SlotAt(At(2, 19, 0)).down == 8000000);

  // Two entries at one minute: the one written last wins (rclone).
  auto tie = ParseBwLimit("Mon-08:00,1M Mon-08:00,2M");
  REQUIRE(tie.ok());
  CHECK(tie->SlotAt(At(Mon, 8, 0)).up == 2 << 20);
  // A single entry is a timetable too, and "off" everywhere limits nothing.
  CHECK(ParseBwLimit("08:00,1M")->timetable.size() == 7);
  CHECK_FALSE(ParseBwLimit("08:00,off 20:00,off")->limited());
  CHECK_FALSE(ParseBwLimit("off")->limited());
}

TEST_CASE("bwlimit timetable: the limit at a local time, and until when it holds", "[bwlimit]") {
  auto t = ParseBwLimit("Mon-08:00,4M Mon-09:00,off");
  REQUIRE(t.ok());
  const double before = LocalTime(Mon, 7, 59, 30);
  BwLimit::InForce in = t->At(before + 0.25);
  CHECK(in.up == 0);
  CHECK(in.until == Approx(before + 30));  // the next entry's minute
  in = t->At(before + 30);
  CHECK(in.up == 4 << 20);
  CHECK(in.down == 4 << 20);
  CHECK(in.until == Approx(before + 30 + 3600));
  // Hours before the next entry: asked again within the hour (a daylight
  // saving change moves local minutes).
  in = t->At(LocalTime(3, 12, 0, 0));
  CHECK(in.up == 0);
  CHECK(in.until == Approx(LocalTime(3, 12, 0, 0) + 3600));
  // A constant limit holds for ever.
  in = ParseBwLimit("2M:8M")->At(before);
  CHECK(in.up == 2 << 20);
  CHECK(in.down == 8 << 20);
  CHECK(std::isinf(in.until));
}

TEST_CASE("bwlimit timetable: bad entries are refused in one line naming the entry", "[bwlimit]") {
  struct Bad {
    const char* text;
    const char* entry;
    const char* why;
  };
  for (const Bad& b : {Bad{"08:00,512k 25:00,1M", "'25:00,1M'", "hour"},
                       Bad{"8:00,1M", "'8:00,1M'", "HH:MM"},
                       Bad{"08:60,1M", "'08:60,1M'", "minute"},
                       Bad{"08:00,1M Mon-09:00", "'Mon-09:00'", "[DAY-]HH:MM,RATE"},
                       Bad{"Foo-08:00,1M", "'Foo-08:00,1M'", "day"},
                       Bad{"08:00,fast", "'08:00,fast'", "rate"},
                       Bad{"08:00,1M,2M", "'08:00,1M,2M'", "[DAY-]HH:MM,RATE"},
                       Bad{"Mon-Tue-08:00,1M", "'Mon-Tue-08:00,1M'", "HH:MM"},
                       Bad{"08:00,1M:", "'08:00,1M:'", "rate"}}) {
    INFO(b.text);
    auto r = ParseBwLimit(b.text);
    REQUIRE_FALSE(r.ok());
    const std::string msg = r.status().message();
    CHECK(msg.find(b.entry) != std::string::npos);
    CHECK(msg.find(b.why) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
  auto plain = ParseBwLimit("lots");
  REQUIRE_FALSE(plain.ok());
  CHECK(plain.status().message().find("'lots'") != std::string::npos);
}

TEST_CASE("bwlimit timetable: the config key takes one, and says which entry is bad", "[bwlimit]") {
  auto env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "HOME") return std::string("/h");
    return std::nullopt;
  };
  auto c = shotsync::ParseConfig("bwlimit = \"Mon-08:00,512k Sat-10:00,off\"\n", "c.toml", env);
  REQUIRE(c.ok());
  CHECK(c->bwlimit.timetable.size() == 2);
  auto bad = shotsync::ParseConfig("bwlimit = \"08:00,512k 24:00,off\"\n", "c.toml", env);
  REQUIRE_FALSE(bad.ok());
  const std::string msg = bad.status().message();
  CHECK(msg.find("c.toml:1: 'bwlimit' must be a rate") == 0);
  CHECK(msg.find("'24:00,off'") != std::string::npos);
}
