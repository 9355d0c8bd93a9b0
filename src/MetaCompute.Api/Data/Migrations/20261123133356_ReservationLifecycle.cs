using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MetaCompute.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class ReservationLifecycle : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "ending_soon_notified_at",
                table: "reservations",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "ix_reservations_status_end_at",
                table: "reservations",
                columns: new[] { "status", "end_at" });

            migrationBuilder.CreateIndex(
                name: "ix_reservations_status_start_at",
                table: "reservations",
                columns: new[] { "status", "start_at" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_reservations_status_end_at",
                table: "reservations");

            migrationBuilder.DropIndex(
                name: "ix_reservations_status_start_at",
                table: "reservations");

            migrationBuilder.DropColumn(
                name: "ending_soon_notified_at",
                table: "reservations");
        }
    }
}
