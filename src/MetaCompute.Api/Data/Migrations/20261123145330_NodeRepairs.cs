using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MetaCompute.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class NodeRepairs : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "repair_due_at",
                table: "nodes",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.CreateIndex(
                name: "ix_nodes_repair_due_at",
                table: "nodes",
                column: "repair_due_at",
                filter: "repair_due_at IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "ix_nodes_repair_due_at",
                table: "nodes");

            migrationBuilder.DropColumn(
                name: "repair_due_at",
                table: "nodes");
        }
    }
}
