using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MetaCompute.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class LeaseDegradation : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "degraded_since",
                table: "leases",
                type: "timestamp with time zone",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "degraded_since",
                table: "leases");
        }
    }
}
