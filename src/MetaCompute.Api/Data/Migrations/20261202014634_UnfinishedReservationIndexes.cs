using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MetaCompute.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class UnfinishedReservationIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_reservations_status_end_at",
                table: "reservations");

            migrationBuilder.DropIndex(
                name: "ix_reservations_status_start_at",
                table: "reservations");

            migrationBuilder.CreateIndex(
                name: "ix_reservations_status_end_at",
                table: "reservations",
                columns: new[] { "status", "end_at" },
                filter: "status IN ('Pending', 'Scheduled', 'Active')");

            migrationBuilder.CreateIndex(
                name: "ix_reservations_status_start_at",
                table: "reservations",
                columns: new[] { "status", "start_at" },
                filter: "status IN ('Pending', 'Scheduled', 'Active')");
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

            migrationBuilder.CreateIndex(
                name: "ix_reservations_status_end_at",
                table: "reservations",
                columns: new[] { "status", "end_at" });

            migrationBuilder.CreateIndex(
                name: "ix_reservations_status_start_at",
                table: "reservations",
                columns: new[] { "status", "start_at" });
        }
    }
}
