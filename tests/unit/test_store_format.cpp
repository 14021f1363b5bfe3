// The node store format on a real tmpfs file.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cstring>
#include <string>
#include <vector>

#include "store/crc32c.hpp"
#include "store/store_format.hpp"

using namespace tck::store;
using tck::Status;

namespace {
struct TmpStore {
    std::string path;
    TmpStore() {
        char tmpl[] = "/dev/shm/tck-format-XXXXXX";
        int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        ::close(fd);
        ::unlink(tmpl);
        path = tmpl;
    }
    ~TmpStore() { ::unlink(path.c_str()); }
};

std::uint32_t take(StoreFile &f, std::uint32_t rank, std::uint64_t version, std::uint64_t bytes,
                   std::uint64_t protect_from) {
    auto guard = f.lock();
    auto s = f.allocate(rank, 4, version, bytes, protect_from, 1);
    INFO((s ? "" : s.status().message()));
    REQUIRE(s);
    return *s;
}

void finish(StoreFile &f, std::uint32_t slot, SlotState state) {
    SlotRecord r = f.read_record(slot);
    r.state = static_cast<std::uint32_t>(state);
    f.write_record(slot, r);
}
}  // namespace

TEST_CASE("a new store is formatted once and keeps its records when re-opened", "[store-format]") {
    TmpStore t;
    {
        auto f = StoreFile::open(t.path, 1 << 20, true);
        REQUIRE(f);
        CHECK_FALSE(f->header_valid());
        REQUIRE(f->format_if_needed(7));
        CHECK(f->header_valid());
        CHECK(f->header().job_id == 7);
        std::uint32_t s = take(*f, 0, 1, 1000, 0);
        finish(*f, s, SlotState::committed);
    }
    auto g = StoreFile::open(t.path, 0, false);
    REQUIRE(g);
    REQUIRE(g->format_if_needed(7));
    auto shards = g->shards();
    REQUIRE(shards.size() == 1);
    CHECK(shards[0].rec.version == 1);
    CHECK(shards[0].rec.offset % kSlotAlign == 0);
}

TEST_CASE("slots in flight and the committed version are never handed out again", "[store-format]") {
    TmpStore t;
    auto f = StoreFile::open(t.path, 1 << 20, true);
    REQUIRE(f);
    REQUIRE(f->format_if_needed(1));
    std::uint32_t a1 = take(*f, 0, 1, 1000, 0);  // rank 0 v1
    std::uint32_t b1 = take(*f, 1, 1, 1000, 0);  // rank 1 v1, while rank 0's is in flight
    CHECK(a1 != b1);
    finish(*f, a1, SlotState::committed);
    finish(*f, b1, SlotState::committed);
    std::uint32_t a2 = take(*f, 0, 2, 1000, 1);  // v1 committed: protected
    CHECK(a2 != a1);
    CHECK(a2 != b1);
    finish(*f, a2, SlotState::committed);
    std::uint32_t a3 = take(*f, 0, 3, 1000, 2);  // v1 is old now: rank 0 reuses its own slot
    CHECK(a3 == a1);
    // A save that died (writing) is reused by its own rank, not by others.
    std::uint32_t b2 = take(*f, 1, 2, 1000, 2);
    CHECK(b2 == b1);  // rank 1's v1 is older than 2
    std::uint32_t c = take(*f, 2, 3, 1000, 2);  // rank 2 may not take rank 0's v3 in flight
    CHECK(c != a3);
}

TEST_CASE("another world size's shards are kept as this one's: an elastic restore may read them", "[store-format]") {
    TmpStore t;
    auto f = StoreFile::open(t.path, 1 << 20, true);
    REQUIRE(f);
    REQUIRE(f->format_if_needed(1));
    std::uint32_t six;
    {
        auto guard = f->lock();
        auto s = f->allocate(0, 6, 12, 1000, 0, 1);  // rank 0 of 6, version 12
        REQUIRE(s);
        six = *s;
    }
    finish(*f, six, SlotState::committed);
    // A job of 4 ranks that has restored nothing yet (a restore's pull, or a
    // save before it) does not take it...
    CHECK(take(*f, 0, 13, 1000, 0) != six);
    // ...nor once it restored version 12 from it (protect_from 12)...
    std::uint32_t after = take(*f, 1, 13, 1000, 12);
    CHECK(after != six);
    // ...only when a newer version committed.
    CHECK(take(*f, 2, 17, 1000, 13) == six);
}

TEST_CASE("a torn record is invalid; a full store says how to fix it", "[store-format]") {
    TmpStore t;
    auto f = StoreFile::open(t.path, 256 * 1024, true);
    REQUIRE(f);
    REQUIRE(f->format_if_needed(1));
    std::uint32_t s = take(*f, 0, 1, 1000, 0);
    finish(*f, s, SlotState::complete);
    REQUIRE(f->shards().size() == 1);
    // Corrupt one byte of the record: it no longer counts.
    auto *raw = f->base() + kHeaderBytes + s * kRecordBytes;
    raw[40] ^= 0xff;
    CHECK(f->shards().empty());

    auto guard = f->lock();
    auto big = f->allocate(1, 4, 1, 10ull << 20, 0, 1);
    REQUIRE_FALSE(big);
    CHECK(big.status().code() == TIERCKPT_ERR_NO_MEMORY);
    CHECK(big.status().message().find("ask for more with --ckpt-mem") != std::string::npos);
}

TEST_CASE("opening a missing store without a size names the fix", "[store-format]") {
    auto f = StoreFile::open("/dev/shm/tck-does-not-exist", 0, false);
    REQUIRE_FALSE(f);
    CHECK(f.status().message().find("srun --ckpt-mem") != std::string::npos);
}

TEST_CASE("a replica being filled is never taken for the same rank's own save", "[store-format]") {
    TmpStore t;
    auto f = StoreFile::open(t.path, 1 << 20, true);
    REQUIRE(f);
    REQUIRE(f->format_if_needed(1));
    std::uint32_t replica = 0;
    {
        auto guard = f->lock();
        auto s = f->allocate(3, 4, 8, 1000, 4, 1, kReplica, 0);  // rank 0 receives rank 3 version 8
        REQUIRE(s);
        replica = *s;
    }
    std::uint32_t own = take(*f, 0, 8, 1000, 4);  // rank 0's own save meanwhile
    CHECK(own != replica);
    CHECK(f->read_record(replica).kind == kReplica);
    CHECK(f->read_record(replica).rank == 3u);
}

namespace {
// A record as a user could forge it: every field chosen, CRC made valid.
void forge(StoreFile &f, std::uint32_t slot, std::uint64_t offset, std::uint64_t capacity, std::uint64_t payload) {
    SlotRecord r{};
    r.offset = offset;
    r.capacity = capacity;
    r.payload_bytes = payload;
    r.state = static_cast<std::uint32_t>(SlotState::committed);
    r.world = 1;
    r.version = 9;
    f.write_record(slot, r);
}
}  // namespace

TEST_CASE("forged records cannot point outside the store, whatever the arithmetic", "[store-format]") {
    TmpStore t;
    auto f = StoreFile::open(t.path, 1 << 20, true);
    REQUIRE(f);
    REQUIRE(f->format_if_needed(1));
    const std::uint64_t size = 1 << 20;
    forge(*f, 0, kDataOffset, 4096, 100);                          // fine
    forge(*f, 1, kDataOffset, UINT64_MAX - kDataOffset + 4097, 1);  // offset + capacity wraps around
    forge(*f, 2, size + 4096, 4096, 1);                            // beyond the end
    forge(*f, 3, 0, 4096, 1);                                      // over the header
    forge(*f, 4, kDataOffset, size, 1);                            // runs past the end
    forge(*f, 5, kDataOffset, 4096, 8192);                         // payload larger than the slot
    auto recs = f->records();
    REQUIRE(recs.size() == 1);
    CHECK(recs[0].slot == 0);
    auto reader = StoreReader::open(t.path);
    REQUIRE(reader);
    REQUIRE(reader->header_valid());
    REQUIRE(reader->records().size() == 1);
    CHECK(reader->records()[0].slot == 0);
    // A header whose data area overlaps the slot directory is not a store.
    Header h = f->header();
    CHECK(header_valid(h, size));
    h.data_offset = 0;
    CHECK_FALSE(header_valid(h, size));
}

TEST_CASE("a store read with pread: cut short under the reader gives an error, not SIGBUS", "[store-format]") {
    TmpStore t;
    std::uint64_t offset = 0;
    {
        auto f = StoreFile::open(t.path, 4 << 20, true);
        REQUIRE(f);
        REQUIRE(f->format_if_needed(1));
        std::uint32_t s = take(*f, 0, 1, 2 << 20, 0);
        offset = f->read_record(s).offset;
        std::memset(f->base() + offset, 0x5a, 2 << 20);
        finish(*f, s, SlotState::committed);
    }
    auto r = StoreReader::open(t.path);
    REQUIRE(r);
    REQUIRE(r->shards().size() == 1);
    auto whole = r->crc(offset, 2 << 20);
    REQUIRE(whole);
    std::vector<std::uint8_t> same(2 << 20, 0x5a);
    CHECK(*whole == tck::crc32c(same.data(), same.size()));
    REQUIRE(::truncate(t.path.c_str(), static_cast<off_t>(offset + 4096)) == 0);
    auto cut = r->crc(offset, 2 << 20);
    REQUIRE_FALSE(cut);
    CHECK(cut.status().message().find("cut short") != std::string::npos);
    // Not a regular file, or a link: refused before any read.
    std::string fifo = t.path + ".fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto f2 = StoreReader::open(fifo);  // would block without O_NONBLOCK
    ::unlink(fifo.c_str());
    REQUIRE_FALSE(f2);
    CHECK(f2.status().message().find("not a regular file") != std::string::npos);
    REQUIRE(::symlink(t.path.c_str(), fifo.c_str()) == 0);
    auto f3 = StoreReader::open(fifo);
    ::unlink(fifo.c_str());
    REQUIRE_FALSE(f3);
    CHECK(f3.status().message().find("symbolic link") != std::string::npos);
}

TEST_CASE("shard manifests: what a payload can hold, exactly", "[store-format]") {
    auto build = [](std::vector<std::pair<std::string, std::uint64_t>> regions) {
        std::vector<std::uint8_t> p(manifest_bytes(regions.size()));
        ManifestHead head{};
        std::memcpy(head.magic, kManifestMagic, sizeof head.magic);
        head.nregions = static_cast<std::uint32_t>(regions.size());
        std::memcpy(p.data(), &head, sizeof head);
        std::uint64_t data = 0;
        for (std::size_t i = 0; i < regions.size(); ++i) {
            ManifestEntry e{};
            std::memcpy(e.name, regions[i].first.data(), regions[i].first.size());
            e.bytes = regions[i].second;
            std::memcpy(p.data() + sizeof head + i * sizeof e, &e, sizeof e);
            data += regions[i].second;
        }
        p.resize(p.size() + data, 0);
        return p;
    };
    auto good = build({{"weights", 100}, {"step", 8}});
    auto parsed = parse_shard_manifest(good.data(), good.size());
    REQUIRE(parsed);
    REQUIRE(parsed->size() == 2);
    CHECK((*parsed)[0].name == "weights");
    CHECK((*parsed)[1].bytes == 8);
    CHECK_FALSE(parse_shard_manifest(good.data(), good.size() - 1));  // one byte short
    CHECK_FALSE(parse_shard_manifest(good.data(), 8));                 // shorter than its header
    // A region size that wraps the sum around.
    auto wrap = build({{"a", UINT64_MAX - 10}, {"b", 20}});
    wrap.resize(manifest_bytes(2) + 9);
    CHECK_FALSE(parse_shard_manifest(wrap.data(), wrap.size()));
    // A count no payload of this size can hold.
    auto many = build({{"a", 1}});
    ManifestHead h{};
    std::memcpy(&h, many.data(), sizeof h);
    h.nregions = 0xffffffffu;
    std::memcpy(many.data(), &h, sizeof h);
    auto r = parse_shard_manifest(many.data(), many.size());
    REQUIRE_FALSE(r);
    CHECK(r.status().message().find("more regions than the shard can hold") != std::string::npos);
}

TEST_CASE("one run at a time per store: the second is refused with the first's name", "[store-format]") {
    TmpStore t;
    auto a = StoreFile::open(t.path, 1 << 20, true);
    REQUIRE(a);
    REQUIRE(a->format_if_needed(1));
    auto b = StoreFile::open(t.path, 0, false);
    REQUIRE(b);
    REQUIRE(a->join_session(11, "job 5 step 0", 0));
    REQUIRE(b->join_session(11, "job 5 step 0", 0));  // another rank of the same run
    {
        auto c = StoreFile::open(t.path, 0, false);
        REQUIRE(c);
        Status refused = c->join_session(22, "job 5 step 1", 200);
        REQUIRE_FALSE(refused);
        CHECK(refused.message().find("another run is checkpointing into this node's store") != std::string::npos);
        CHECK(refused.message().find("job 5 step 0") != std::string::npos);
    }
    // The first run ends (its ranks close the store, or die): the next runs.
    a = tck::error(TIERCKPT_ERR_INTERNAL, "closed");
    b = tck::error(TIERCKPT_ERR_INTERNAL, "closed");
    auto d = StoreFile::open(t.path, 0, false);
    REQUIRE(d);
    CHECK(d->join_session(22, "job 5 step 1", 0));
}

TEST_CASE("store_bytes_for is exactly the store the no-wait pipeline needs", "[store-format]") {
    // A node of two ranks keeping copies of a partner node's two ranks:
    // three versions of its own shards (committed, in flight, pending) and
    // two of each copy, payloads not slot-aligned.
    const std::uint64_t payload = 10000;
    const std::vector<std::uint64_t> own = {payload, payload}, kept = {payload, payload};
    auto need = store_bytes_for(own, 3, kept, 2);
    REQUIRE(need);
    CHECK(*need == kDataOffset + 10 * slot_bytes(payload));
    CHECK(slot_bytes(payload) == 12288);
    CHECK(slot_bytes(8184) == 8192);    // the payload and its one-piece table fill two pages
    CHECK(slot_bytes(8192) == 12288);   // the table needs a page of its own
    CHECK(slot_bytes(256ull << 20) == (256ull << 20) + 4096);  // 64 pieces: 256 bytes of table

    auto fill = [&](std::uint64_t size) -> bool {
        TmpStore t;
        auto f = StoreFile::open(t.path, size, true);
        REQUIRE(f);
        REQUIRE(f->format_if_needed(1));
        auto guard = f->lock();
        for (std::uint32_t rank = 0; rank < 2; ++rank) {
            // Version 1 committed (kept), 2 complete (in flight), 3 being
            // staged; copies of versions 1 and 2.
            for (std::uint64_t v = 1; v <= 3; ++v) {
                auto s = f->allocate(rank, 4, v, payload, 1, 1);
                if (!s) return false;
                if (v < 3) finish(*f, *s, v == 1 ? SlotState::committed : SlotState::complete);
            }
            for (std::uint64_t v = 1; v <= 2; ++v) {
                auto s = f->allocate(rank + 2, 4, v, payload, 1, 1, kReplica, rank);
                if (!s) return false;
                finish(*f, *s, v == 1 ? SlotState::committed : SlotState::complete);
            }
        }
        return true;
    };
    CHECK(fill(*need));
    CHECK_FALSE(fill(*need - kSlotAlign));  // one page less: the last slot does not fit

    // More slots than a store's directory has: refused, naming the fix.
    auto too_many = store_bytes_for(std::vector<std::uint64_t>(100, payload), 3, {}, 2);
    REQUIRE_FALSE(too_many);
    CHECK(too_many.status().message().find("fewer ranks per node") != std::string::npos);
}

TEST_CASE("a flush's pinned version keeps its slot; the versions committed meanwhile do not pile up", "[store-format]") {
    TmpStore t;
    const std::uint64_t shard = 8184;  // two pages with its piece table
    auto f = StoreFile::open(t.path, kDataOffset + 3 * slot_bytes(shard), true);
    REQUIRE(f);
    REQUIRE(f->format_if_needed(1));
    auto guard = f->lock();
    // Versions 4, 5, 6 of rank 0 committed in turn; a flush still reads 4.
    std::uint32_t s4 = *f->allocate(0, 4, 4, shard, 0, 1);
    finish(*f, s4, SlotState::committed);
    std::uint32_t s5 = *f->allocate(0, 4, 5, shard, 4, 1);
    finish(*f, s5, SlotState::committed);
    std::uint32_t s6 = *f->allocate(0, 4, 6, shard, 5, 1, kOwnShard, -1, -1, 4);
    finish(*f, s6, SlotState::committed);
    // Version 7 with 6 committed: 5 is free to take, 4 (pinned) is not.
    auto s7 = f->allocate(0, 4, 7, shard, 6, 1, kOwnShard, -1, -1, 4);
    REQUIRE(s7);
    CHECK(*s7 == s5);
    finish(*f, *s7, SlotState::complete);
    // Nothing else is free while 4 is pinned; once the flush is done, it is.
    CHECK_FALSE(f->allocate(0, 4, 8, shard, 6, 1, kOwnShard, -1, -1, 4));
    auto s8 = f->allocate(0, 4, 8, shard, 6, 1);
    REQUIRE(s8);
    CHECK(*s8 == s4);
}

TEST_CASE("free_version frees a failed version's complete slots of one writer and kind", "[store-format]") {
    TmpStore t;
    auto f = StoreFile::open(t.path, 1 << 20, true);
    REQUIRE(f);
    REQUIRE(f->format_if_needed(1));
    auto guard = f->lock();
    std::uint32_t own = *f->allocate(0, 4, 9, 1000, 0, 1);
    finish(*f, own, SlotState::complete);
    std::uint32_t copy = *f->allocate(2, 4, 9, 1000, 0, 1, kReplica, 0);
    finish(*f, copy, SlotState::complete);
    std::uint32_t filling = *f->allocate(3, 4, 9, 1000, 0, 1, kReplica, 0);  // still being pulled
    std::uint32_t other = *f->allocate(1, 4, 9, 1000, 0, 1);                  // rank 1's own
    finish(*f, other, SlotState::complete);
    CHECK(f->free_version(9, 0, kOwnShard) == 1);
    CHECK(f->free_version(9, 0, kReplica) == 1);
    CHECK(f->read_record(own).state == static_cast<std::uint32_t>(SlotState::empty));
    CHECK(f->read_record(copy).state == static_cast<std::uint32_t>(SlotState::empty));
    CHECK(f->read_record(filling).state == static_cast<std::uint32_t>(SlotState::writing));
    CHECK(f->read_record(other).state == static_cast<std::uint32_t>(SlotState::complete));
    CHECK(f->free_version(8, 1, kOwnShard) == 0);
}

TEST_CASE("a shard's piece table is written after its payload and believed only when it joins into its CRC",
          "[store-format]") {
    TmpStore t;
    auto f = StoreFile::open(t.path, 64 << 20, true);
    REQUIRE(f);
    REQUIRE(f->format_if_needed(1));
    const std::uint64_t piece = std::uint64_t{1} << kPieceShift;
    const std::uint64_t payload = 2 * piece + 1000;  // three pieces, the last short
    std::uint32_t slot = take(*f, 0, 1, payload, 0);
    SlotRecord rec = f->read_record(slot);
    CHECK(rec.piece_shift == 0);  // a fresh slot has no table
    CHECK(rec.capacity == slot_bytes(payload));
    for (std::uint64_t i = 0; i < payload; ++i) f->base()[rec.offset + i] = static_cast<std::uint8_t>(i * 7 + 3);
    tck::PieceCrc crc(piece);
    crc.add(f->base() + rec.offset, payload, 2);
    rec.payload_crc = crc.whole();
    CHECK(f->write_piece_table(rec, {1, 2}) == 0);  // not the payload's count of pieces
    rec.piece_shift = f->write_piece_table(rec, crc.pieces());
    CHECK(rec.piece_shift == kPieceShift);
    rec.state = static_cast<std::uint32_t>(SlotState::complete);
    f->write_record(slot, rec);

    auto table = f->read_piece_table(f->read_record(slot));
    REQUIRE(table);
    CHECK(*table == crc.pieces());
    // The pread reader (the tierckpt command) reads the same.
    auto reader = StoreReader::open(t.path);
    REQUIRE(reader);
    auto read = reader->piece_table(f->read_record(slot));
    REQUIRE(read);
    REQUIRE(*read);
    CHECK(**read == crc.pieces());

    // Not believed: a changed entry (it no longer joins into payload_crc),
    // a shift out of range, a table that would lie beyond the slot, none.
    std::uint32_t *at = reinterpret_cast<std::uint32_t *>(f->base() + rec.offset + piece_table_offset(payload));
    at[1] ^= 1;
    CHECK_FALSE(f->read_piece_table(rec));
    auto reader2 = StoreReader::open(t.path);
    REQUIRE(reader2);
    auto read2 = reader2->piece_table(rec);
    REQUIRE(read2);
    CHECK_FALSE(*read2);
    at[1] ^= 1;
    REQUIRE(f->read_piece_table(rec));
    SlotRecord odd = rec;
    odd.piece_shift = 40;
    CHECK_FALSE(f->read_piece_table(odd));
    CHECK(piece_table_count(odd) == 0);
    odd.piece_shift = kMinPieceShift;  // 4 KiB pieces: more entries than the slot has room for
    CHECK(piece_table_count(odd) == 0);
    odd.piece_shift = 0;
    CHECK_FALSE(f->read_piece_table(odd));

    // A slot handed out for its payload alone (an older version's) gets no table.
    SlotRecord tight = rec;
    tight.capacity = payload;
    CHECK(f->write_piece_table(tight, crc.pieces()) == 0);
}

TEST_CASE("check_pieces checks only the pieces the ranges touch, and names the damaged one", "[store-format]") {
    const std::uint32_t shift = kMinPieceShift;  // 4 KiB pieces
    const std::uint64_t piece = std::uint64_t{1} << shift;
    std::vector<std::uint8_t> payload(5 * piece + 100);  // six pieces, the last of 100 bytes
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::uint8_t>(i * 13 + 1);
    tck::PieceCrc crc(piece);
    crc.add(payload.data(), payload.size());
    const std::vector<std::uint32_t> table = crc.pieces();
    REQUIRE(table.size() == 6);
    using Ranges = std::vector<std::pair<std::uint64_t, std::uint64_t>>;
    auto check = [&](const Ranges &needs, unsigned threads = 1) {
        return check_pieces(payload.data(), payload.size(), table, shift, needs, threads);
    };
    CHECK(check({{0, payload.size()}}, 3));
    payload[2 * piece + 7] ^= 0x40;  // piece 2 damaged
    // Ranges that stay out of piece 2 pass: they never read it.
    CHECK(check({{0, 2 * piece}, {3 * piece, payload.size()}}));
    CHECK(check({{2 * piece - 1, 2 * piece}}));    // its last byte before
    CHECK(check({{3 * piece, 3 * piece + 1}}));    // the first byte after
    CHECK(check({{2 * piece + 5, 2 * piece + 5}})); // empty
    // Any byte of it is caught, with its piece's bytes named.
    for (const Ranges &needs : {Ranges{{2 * piece, 2 * piece + 1}}, Ranges{{0, 1}, {3 * piece - 1, 4 * piece}},
                                Ranges{{0, payload.size()}}}) {
        Status st = check(needs, 2);
        REQUIRE_FALSE(st);
        CHECK(st.code() == TIERCKPT_ERR_CORRUPT);
        CHECK(st.message() == "checksum mismatch in bytes [8192, 12288) of the shard");
    }
    payload[2 * piece + 7] ^= 0x40;
    payload[payload.size() - 1] ^= 1;  // the short last piece
    Status last = check({{payload.size() - 1, payload.size() + 50}});  // cut at the payload's end
    REQUIRE_FALSE(last);
    CHECK(last.message() == "checksum mismatch in bytes [20480, 20580) of the shard");
    // A table that is not this payload's is refused, not half-used.
    CHECK(check_pieces(payload.data(), payload.size(), {1, 2}, shift, {{0, 1}}, 1).code() == TIERCKPT_ERR_INVALID);
    CHECK(check_pieces(payload.data(), payload.size(), table, 50, {{0, 1}}, 1).code() == TIERCKPT_ERR_INVALID);
}
