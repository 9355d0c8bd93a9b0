using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MetaCompute.Api.Data.Migrations
{
    /// <summary>
    /// A statement-level row-count check for writes the pool decider sends in one round trip with their COMMIT: an update
    /// that finds fewer rows at the row version it read must abort the transaction before that COMMIT runs, as EF's
    /// concurrency check would, and as a serialization failure, which the decider retries.
    /// </summary>
    public partial class RowCountAssertion : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                CREATE FUNCTION assert_row_count(actual bigint, expected integer, what text) RETURNS bigint
                LANGUAGE plpgsql AS $$
                BEGIN
                    IF actual <> expected THEN
                        RAISE EXCEPTION '% of % % changed: the others changed since they were read', actual, expected, what
                            USING ERRCODE = 'serialization_failure';
                    END IF;
                    RETURN actual;
                END
                $$;
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("DROP FUNCTION assert_row_count(bigint, integer, text);");
        }
    }
}
