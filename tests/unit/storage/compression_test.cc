// The codecs (compression.h) and the cleaner on compressed batches: round trips, frames
// written by other implementations, corrupt input and decompression bombs; a compressed
// batch that loses records keeps the survivors at their offsets, with its codec and a valid CRC.
#include "storage/compression.h"
#include "storage/log_cleaner.h"
#include "storage/partition_log.h"

#include "test_util.h"

#include <doctest/doctest.h>

#include <fmt/format.h>

#include <map>
#include <random>

using namespace sluice::storage;
using namespace sluice::storage::test;

namespace {

constexpr compression all_codecs[] = {compression::gzip, compression::snappy, compression::lz4,
                                      compression::zstd};

std::vector<uint8_t> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

// Fixtures written by python3's gzip, python-snappy (raw, and xerial framing built by hand
// around its blocks, 300-byte blocks so there are several), python-lz4 (lz4.frame) and
// python-zstandard, all of fixture_payload(), under Debian's /usr/bin/python3:
//   payload = b"".join(b"key-%03d=value-%03d;" % (i, i*7 % 101) for i in range(40))
//   gzip.compress(payload, mtime=0); snappy.compress(payload);
//   b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1) + [struct.pack(">i", len(c)) + c for each
//     c = snappy.compress(300-byte slice)]; lz4.frame.compress(payload);
//   zstandard.ZstdCompressor().compress(payload)
// gzip: 208 bytes
inline constexpr std::string_view gzip_hex =
    "1f8b080000000000020345d24d6a02401044e11305a6bbe617f13059b8d26d02b97d505f97bbe141c35730f7dbdf576b"
    "edfafbfdf8b93d5f97fbab84cba26495e81455c9a074974d19553428b34a4fca7239945d654ccaa932f52e61f3c21c36"
    "2fcc61f3c61c361fcc61f3c11c36b7bab239eacae6a82b9b93a561b3589a368ba569736769da3c589a364f96a6cd93a5"
    "69f3c29c366fcc69f3c69c361fcc6973e34a9fbfc1956c0eae6473b2549fbfc152d92c96cae6ce52d93c582a9b074b65"
    "f364a96c5e71f9078d9d9d7cd0020000"
    ;
// snappy_raw: 347 bytes
inline constexpr std::string_view snappy_raw_hex =
    "d005306b65792d3030303d76616c7565010a003b09120031151200370d12003211120431340d12003311120432310d12"
    "0034151200380d12003511120433350d12003611120434320d120037151200390d12003811120435360d120039111204"
    "36330912003115b400370db4003115b400370db4003115b400380db4003115b400390db4003115b40439380d5a15b400"
    "3011360036117e0031113615b40431380d360038112400320dea003115b400330dea003215b400330dea003215b40034"
    "0dea003215b400350dea003215b400360dea003215b400360dea003215b400370db4043236119000380db4003215b404"
    "383809b4003215b400390db4003215b400300d36003315b400300d36003315b400310d36003315b400320dea003315b4"
    "00320dea003315b400330dea003315b400340dea04333611b400350dea003315b400350dea003315b400360dea303339"
    "3d76616c75652d3037313b"
    ;
// snappy_xerial: 424 bytes
inline constexpr std::string_view snappy_xerial_hex =
    "82534e415050590000000001000000010000009fac02306b65792d3030303d76616c7565010a003b0912003115120037"
    "0d12003211120431340d12003311120432310d120034151200380d12003511120433350d12003611120434320d120037"
    "151200390d12003811120435360d12003911120436330912003115b400370db4003115b400370db4003115b400380db4"
    "003115b400390db4003115b40439380d5a15b43830343b6b65792d3031363d76616c750000009fac0244652d3031313b"
    "6b65792d3031373d76616c75011200380d12003811120432350d12003911120433320912043230151200390d12003111"
    "120434360d12003211120435330d12003311120436300d120034151200370d12003511120437340d120036111200380d"
    "b4003215b40438380d2415b400390db4003215b400300d36003315b400300d36003315b400310d36003315b42032323b"
    "6b65792d30330000004e7848333d76616c75652d3032393b6b65792d30333411120433360d12003511120434330d1200"
    "3611120435300d1204373d0d480435370d12003811120436340d122c393d76616c75652d3037313b"
    ;
// lz4: 360 bytes
inline constexpr std::string_view lz4_hex =
    "04224d186840d0020000000000004f51010000d06b65792d3030303d76616c75650a00123b1200153112001337120014"
    "321200233134120014331200233231120015341200133812001435120023333512001436120023343212001537120013"
    "3912001438120023353612001439120022363312001531b400233730120005b4001337b4001531b4001338b4001531b4"
    "001339b4001531b4001339b4001531b4001430360005b4001431360005b4001431360005b4001332ea001531b4001333"
    "ea001532b4001333ea001532b4001334ea001532b4001335ea001532b4001336ea001532b4001336ea001532b4001337"
    "b4001532b4001338b4001532b4001338b4001532b4001339b4001532b400133036001533b400133036001533b4001331"
    "36001533b4001332ea001533b4001332ea001533b4001333ea001533b4001334ea001533b4001335ea001533b4001335"
    "ea001533b4001336ea001333b400502d3037313b00000000"
    ;
// zstd: 140 bytes
inline constexpr std::string_view zstd_hex =
    "28b52ffd60d001150400b2071413b017da001081b230605189ecdeb4d3e824c705a27527abe2907c487e627b5aa39437"
    "6756357a4d9d2432a6f768cb8dcdaaa573ec3db9b9ca62858ec6ae7c1a197b2dafab62140802438024e03006014fa810"
    "a8decff09503101081f1f6b9d11086afddc47f7a76f6d9dbebb80fc7b6e7f022fff4d9d9b3d36925770a640a"
    ;

std::vector<uint8_t> fixture_payload() {
    std::string s;
    for (int i = 0; i < 40; ++i) s += fmt::format("key-{:03}=value-{:03};", i, i * 7 % 101);
    return bytes_of(s);
}

// Compressible but not trivial: words from a small alphabet plus some noise.
std::vector<uint8_t> sample(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> out(n);
    for (auto& b : out) b = static_cast<uint8_t>(rng() % 4 == 0 ? rng() : 'a' + rng() % 6);
    return out;
}

}  // namespace

TEST_CASE("every codec round-trips empty, small and large inputs") {
    for (auto codec : all_codecs) {
        CAPTURE(compression_name(codec));
        for (size_t n : {size_t{0}, size_t{1}, size_t{100}, size_t{70'000}, size_t{1} << 20}) {
            CAPTURE(n);
            auto in = sample(n, static_cast<uint32_t>(n));
            auto packed = compress(codec, in);
            REQUIRE(packed.has_value());
            if (n >= 70'000) CHECK(packed->size() < n);
            auto back = decompress(codec, *packed);
            REQUIRE(back.has_value());
            CHECK(*back == in);
        }
    }
}

TEST_CASE("frames written by other implementations decode") {
    auto payload = fixture_payload();
    REQUIRE(payload.size() == 720);
    CHECK(decompress(compression::gzip, from_hex(gzip_hex)).value() == payload);
    CHECK(decompress(compression::snappy, from_hex(snappy_raw_hex)).value() == payload);
    CHECK(decompress(compression::snappy, from_hex(snappy_xerial_hex)).value() == payload);
    CHECK(decompress(compression::lz4, from_hex(lz4_hex)).value() == payload);
    CHECK(decompress(compression::zstd, from_hex(zstd_hex)).value() == payload);
}

TEST_CASE("what we write for snappy is xerial framing, readable block by block") {
    auto in = sample(100'000, 3);
    auto packed = compress(compression::snappy, in).value();
    REQUIRE(packed.size() > 16);
    CHECK(std::equal(packed.begin(), packed.begin() + 8, from_hex("82534e4150505900").begin()));
    // Four 32 KiB blocks: each length prefix points at the next one.
    size_t blocks = 0;
    for (size_t pos = 16; pos < packed.size(); ++blocks) {
        REQUIRE(packed.size() - pos >= 4);
        pos += 4 + (size_t{packed[pos]} << 24 | size_t{packed[pos + 1]} << 16 | size_t{packed[pos + 2]} << 8 |
                    packed[pos + 3]);
        REQUIRE(pos <= packed.size());
    }
    CHECK(blocks == 4);
}

TEST_CASE("corrupt, truncated and garbage input fails cleanly") {
    auto payload = fixture_payload();
    auto garbage = bytes_of("this is not a compressed payload, not even close......");
    for (auto codec : all_codecs) {
        CAPTURE(compression_name(codec));
        auto packed = compress(codec, sample(50'000, 11)).value();
        auto truncated = std::span<const uint8_t>(packed).first(packed.size() / 2);
        CHECK(decompress(codec, truncated).error() == log_errc::corrupt_message);
        CHECK(decompress(codec, garbage).error() == log_errc::corrupt_message);
        CHECK(decompress(codec, {}).error() == log_errc::corrupt_message);
        // Every single-byte truncation and a spread of bit flips: an error or (for a flip
        // a codec without checksums cannot see) some output, never a crash or overrun.
        std::mt19937 rng(static_cast<uint32_t>(codec));
        for (int i = 0; i < 200; ++i) {
            auto bad = packed;
            bad[rng() % bad.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
            auto r = decompress(codec, bad, 1 << 20);
            if (r) CHECK(r->size() <= size_t{1} << 20);
        }
    }
    // A xerial block length pointing past the end.
    auto xerial = from_hex(snappy_xerial_hex);
    xerial[16] = 0x7f;
    CHECK(decompress(compression::snappy, xerial).error() == log_errc::corrupt_message);
    CHECK(decompress(compression::none, payload).error() == log_errc::unsupported_compression_type);
    CHECK(decompress(static_cast<compression>(5), payload).error() == log_errc::unsupported_compression_type);
}

TEST_CASE("a decompression bomb stops at the cap") {
    std::vector<uint8_t> zeros(8 << 20, 0);
    for (auto codec : all_codecs) {
        CAPTURE(compression_name(codec));
        auto packed = compress(codec, zeros).value();
        CHECK(packed.size() < zeros.size() / 20);
        CHECK(decompress(codec, packed, 1 << 20).error() == std::errc::value_too_large);
        CHECK(decompress(codec, packed, zeros.size() - 1).error() == std::errc::value_too_large);
        CHECK(decompress(codec, packed, zeros.size()).value() == zeros);
    }
}

TEST_CASE("compress_batch / decompress_batch keep the header and fix length, codec bits and CRC") {
    batch_builder b(5000);
    b.producer(77, 3, 10).attributes(batch_attr::log_append_time);
    for (int i = 0; i < 50; ++i) b.add("k" + std::to_string(i), std::string(40, 'a' + i % 26), 5000 + i);
    auto plain = b.build(1234);
    for (auto codec : all_codecs) {
        CAPTURE(compression_name(codec));
        auto packed = compress_batch(plain, codec).value();
        REQUIRE(!check_stored_batch(packed, packed.size()));
        auto h = parse_batch_header(packed.data());
        CHECK(h.codec() == codec);
        CHECK(h.ts_type() == timestamp_type::log_append_time);
        CHECK(h.base_offset == 1234);
        CHECK(h.producer_id == 77);
        CHECK(h.record_count == 50);
        CHECK(packed.size() < plain.size());
        CHECK(decode_records(packed).error() == log_errc::invalid_record);  // opaque without the codec
        CHECK(decompress_batch(packed).value() == plain);
        // A flipped payload byte is caught by the CRC before any codec runs.
        auto bad = packed;
        bad.back() ^= 1;
        CHECK(decompress_batch(bad).error() == log_errc::corrupt_message);
    }
    CHECK(compress_batch(compress_batch(plain, compression::gzip).value(), compression::lz4).error() ==
          log_errc::corrupt_message);
}

namespace {


struct stored {
    int64_t offset;
    std::string key;
    std::string value;
    compression codec;
    bool operator==(const stored&) const = default;
};

// Every record of the log with the codec of the batch holding it; checks each batch's CRC.
std::vector<stored> read_stored(const partition_log& log) {
    auto r = log.read(log.log_start_offset(), 64 << 20, true);
    REQUIRE(r.error == log_errc::ok);
    auto bytes = slice_bytes(r);
    std::vector<stored> out;
    for (size_t pos = 0; pos < bytes.size();) {
        auto h = parse_batch_header(bytes.data() + pos);
        auto batch = std::span<const uint8_t>(bytes).subspan(pos, h.size_bytes());
        REQUIRE(!check_stored_batch(batch, batch.size()));
        auto plain = h.codec() == compression::none ? std::vector<uint8_t>(batch.begin(), batch.end())
                                                    : decompress_batch(batch).value();
        auto recs = decode_records(plain);
        REQUIRE(recs.has_value());
        for (auto& rec : *recs)
            out.push_back({h.base_offset + rec.offset_delta, as_string(*rec.key), as_string(*rec.value),
                           h.codec()});
        pos += h.size_bytes();
    }
    return out;
}

}  // namespace

TEST_CASE("the cleaner compacts compressed batches and re-compresses them with their codec") {
    temp_dir dir;
    auto cfg = compact_test_config();
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    std::vector<stored> all;
    int64_t ts = 1000;
    // Batches of 12 records over 30 keys, each batch with the next codec (and some plain).
    for (int batch = 0; batch < 40; ++batch) {
        compression codec = batch % 5 == 4 ? compression::none : all_codecs[batch % 5];
        batch_builder b(ts);
        std::vector<std::pair<std::string, std::string>> recs;
        for (int i = 0; i < 12; ++i) {
            std::string key = fmt::format("key{:02}", (batch * 7 + i * 5) % 30);
            std::string value = fmt::format("value-{}-{}-{}", batch, i, std::string(i * 3, 'z'));
            b.add(key, value, ts++);
            recs.emplace_back(key, value);
        }
        auto bytes = b.build();
        if (codec != compression::none) bytes = compress_batch(bytes, codec).value();
        auto r = log->append(bytes, 0, ts);
        REQUIRE(r.error == log_errc::ok);
        for (int i = 0; i < 12; ++i) all.push_back({r.base_offset + i, recs[i].first, recs[i].second, codec});
    }
    REQUIRE(log->segment_count() > 3);
    REQUIRE(read_stored(*log) == all);

    auto task = log->prepare_cleaning(100'000);
    REQUIRE(task.has_value());
    auto cleaned = run_cleaning(*task);
    REQUIRE(cleaned.has_value());
    REQUIRE(!log->install_cleaned(*cleaned));
    int64_t end = log->cleaner_checkpoint();
    REQUIRE(end > 100);

    std::map<std::string, int64_t> last;
    for (auto& s : all)
        if (s.offset < end) last[s.key] = s.offset;
    std::vector<stored> expect;
    for (auto& s : all)
        if (s.offset >= end || last[s.key] == s.offset) expect.push_back(s);
    REQUIRE(expect.size() < all.size());
    auto now = read_stored(*log);
    CHECK(now == expect);  // offsets, keys, values and each batch's codec all as before
    CHECK(cleaned->stats.records_removed == all.size() - expect.size());
    CHECK(cleaned->stats.bytes_after < cleaned->stats.bytes_before);
    // Some compressed batch really lost only part of its records (so it was re-compressed).
    std::map<int64_t, int> survivors_per_batch;
    for (auto& s : now)
        if (s.codec != compression::none && s.offset < end) survivors_per_batch[s.offset / 12]++;
    CHECK(std::any_of(survivors_per_batch.begin(), survivors_per_batch.end(),
                      [](auto& kv) { return kv.second > 0 && kv.second < 12; }));

    // Unclean reopen re-validates every batch (CRC, structure) and reads the same.
    log.reset();
    auto again = partition_log::open(dir.path() / "t-0", cfg, {.clean_shutdown = false}).value();
    CHECK(read_stored(*again) == expect);
}

TEST_CASE("a compressed batch that does not decompress is kept whole, transactional ones too") {
    temp_dir dir;
    auto cfg = compact_test_config();
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    // A "gzip" batch whose payload is plain records (valid CRC, undecodable payload), then a
    // transactional zstd batch, then newer values of the same keys, enough to roll segments.
    auto fake = batch_builder(1000).add("a", "old-a").add("b", "old-b").codec(compression::gzip).build();
    REQUIRE(log->append(fake, 0, 1000).error == log_errc::ok);
    auto txn = batch_builder(1000).producer(5, 0, 0).attributes(batch_attr::transactional)
                   .add("c", "old-c").add("d", "old-d").build();
    txn = compress_batch(txn, compression::zstd).value();
    REQUIRE(log->append(txn, 0, 1000).error == log_errc::ok);
    for (int i = 0; i < 60; ++i) {
        auto b = batch_builder(2000).add(std::string(1, "abcd"[i % 4]), fmt::format("new-{}{}", i, std::string(40, 'n')))
                     .codec(compression::none).build();
        b = compress_batch(b, compression::lz4).value();
        REQUIRE(log->append(b, 0, 2000).error == log_errc::ok);
    }
    auto task = log->prepare_cleaning(100'000);
    REQUIRE(task.has_value());
    auto cleaned = run_cleaning(*task);
    REQUIRE(cleaned.has_value());
    REQUIRE(!log->install_cleaned(*cleaned));
    auto r = log->read(0, 64 << 20, true);
    auto bytes = slice_bytes(r);
    // Offsets 0-1 (fake gzip) and 2-3 (transactional) are still there, byte for byte.
    REQUIRE(bytes.size() >= fake.size() + txn.size());
    CHECK(std::equal(fake.begin(), fake.end(), bytes.begin()));
    auto h = parse_batch_header(bytes.data() + fake.size());
    CHECK(h.base_offset == 2);
    CHECK(h.is_transactional());
    CHECK(h.codec() == compression::zstd);
    CHECK(cleaned->stats.records_removed > 0);
}
