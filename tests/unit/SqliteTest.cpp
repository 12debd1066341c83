#include <gtest/gtest.h>

#include <filesystem>

#include "ferry/SqlConnection.h"
#include "ferry/Sqlite.h"
#include "support/TestSupport.h"

namespace ferry {
namespace {

class ADatabase : public ::testing::Test {
protected:
    test::TempDir dir;
    Database db{dir / "test.db"};

    void SetUp() override
    {
        db.exec("CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT)");
        for (int i = 1; i <= 3; ++i)
            Statement(db, "INSERT INTO t (n, v) VALUES (?1, ?2)").bind(1, i).bind(2, "v" + std::to_string(i)).run();
    }
};

TEST_F(ADatabase, GivesTwoLiveStatementsOfTheSameSqlCursorsOfTheirOwn)
{
    const char* sql = "SELECT n FROM t ORDER BY n";
    Statement outer(db, sql);
    ASSERT_TRUE(outer.step());
    EXPECT_EQ(outer.int64(0), 1);
    {
        Statement inner(db, sql);
        ASSERT_TRUE(inner.step());
        EXPECT_EQ(inner.int64(0), 1) << "a statement in use must not be handed out again";
        ASSERT_TRUE(inner.step());
    }
    ASSERT_TRUE(outer.step());
    EXPECT_EQ(outer.int64(0), 2) << "the inner statement must not move the outer one";
}

TEST_F(ADatabase, HandsOutAReusedStatementResetAndWithoutTheLastBindings)
{
    const char* sql = "SELECT COUNT(*) FROM t WHERE n > ?1";
    {
        Statement s(db, sql);
        s.bind(1, 1);
        ASSERT_TRUE(s.step());
        EXPECT_EQ(s.int64(0), 2);
        // Left mid-result on purpose: the cache must reset it.
    }
    Statement again(db, sql);
    ASSERT_TRUE(again.step());
    EXPECT_EQ(again.int64(0), 0) << "an unbound parameter is NULL: the last bindings must be gone";
}

TEST_F(ADatabase, SeesTheNewSchemaThroughAStatementPreparedBeforeIt)
{
    const char* sql = "SELECT * FROM t WHERE n = 1";
    {
        Statement s(db, sql);
        ASSERT_TRUE(s.step());
    }
    db.exec("ALTER TABLE t ADD COLUMN w TEXT DEFAULT 'x'");
    Statement s(db, sql);
    ASSERT_TRUE(s.step());
    EXPECT_EQ(s.text(2), "x");
}

// The cache looks texts up as given and keeps a slot per text: a text that
// does not compile leaves nothing behind, texts built from data beyond the
// cache's bound still run (uncached), and the slots stay valid while the
// cache grows (its table rehashes) under statements that hold them.
TEST_F(ADatabase, RunsEveryTextWhateverTheCacheHoldsAndForgetsOneThatDoesNotCompile)
{
    EXPECT_THROW(Statement(db, "SELECT nope FROM t"), SqliteError);
    EXPECT_THROW(Statement(db, "SELECT nope FROM t"), SqliteError) << "the same text fails again";
    Statement held(db, "SELECT v FROM t WHERE n = ?1");
    held.bind(1, 2);
    for (int i = 0; i < 600; ++i) {
        Statement s(db, "SELECT " + std::to_string(i) + " + n FROM t WHERE n = 1");
        ASSERT_TRUE(s.step());
        EXPECT_EQ(s.int64(0), i + 1);
    }
    ASSERT_TRUE(held.step());
    EXPECT_EQ(held.text(0), "v2");
    held.reset();
    {
        Statement again(db, "SELECT v FROM t WHERE n = ?1");
        again.bind(1, 3);
        ASSERT_TRUE(again.step());
        EXPECT_EQ(again.text(0), "v3");
    }
    for (int i = 0; i < 600; ++i) {
        Statement s(db, "SELECT " + std::to_string(i) + " + n FROM t WHERE n = 1");
        ASSERT_TRUE(s.step());
        EXPECT_EQ(s.int64(0), i + 1);
    }
}

std::size_t openFiles()
{
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
        ++n;
    return n;
}

// SQLite opens a file that is not a database without complaint and fails at
// the first statement, inside the constructor: the connection must be closed
// there (the sanitizer build found it leaked, a file descriptor per attempt).
TEST_F(ADatabase, CommitsUnsyncedThroughSqlConnectionOnlyWithinTheScope)
{
    // pulld's bookkeeping after a pull: NORMAL for the scope, FULL after it
    // (1 and 2 in PRAGMA synchronous).
    Database master(dir / "master.db");
    SqliteConnection connection(master);
    auto synchronous = [&] {
        Statement s(master, "PRAGMA synchronous");
        return s.step() ? s.int64(0) : -1;
    };
    ASSERT_EQ(synchronous(), 2);
    {
        const SqlUnsyncedCommits unsynced(connection);
        EXPECT_EQ(synchronous(), 1);
        SqlTransaction tx(connection);
        SqlStatement(connection, "CREATE TABLE u (x INTEGER)").run();
        tx.commit();
    }
    EXPECT_EQ(synchronous(), 2) << "every later commit syncs again";
}

TEST_F(ADatabase, ClosesTheFileOfADatabaseItCannotRead)
{
    const std::string junk = dir / "junk.db";
    test::writeFile(junk, std::string(8192, 'x'), 0600);
    const std::size_t before = openFiles();
    for (int i = 0; i < 20; ++i)
        EXPECT_THROW(Database{junk}, SqliteError);
    EXPECT_EQ(openFiles(), before) << "each failed open left a file descriptor behind";
}

} // namespace
} // namespace ferry
