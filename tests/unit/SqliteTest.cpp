#include <gtest/gtest.h>

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

} // namespace
} // namespace ferry
