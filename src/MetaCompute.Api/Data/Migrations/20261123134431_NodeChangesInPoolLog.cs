using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace MetaCompute.Api.Data.Migrations
{
    /// <inheritdoc />
    public partial class NodeChangesInPoolLog : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AlterColumn<Guid>(
                name: "lease_id",
                table: "pool_changes",
                type: "uuid",
                nullable: true,
                oldClrType: typeof(Guid),
                oldType: "uuid");

            migrationBuilder.AddColumn<bool>(
                name: "node_allocatable",
                table: "pool_changes",
                type: "boolean",
                nullable: true);

            migrationBuilder.AddColumn<int>(
                name: "node_id",
                table: "pool_changes",
                type: "integer",
                nullable: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropColumn(
                name: "node_allocatable",
                table: "pool_changes");

            migrationBuilder.DropColumn(
                name: "node_id",
                table: "pool_changes");

            migrationBuilder.AlterColumn<Guid>(
                name: "lease_id",
                table: "pool_changes",
                type: "uuid",
                nullable: false,
                defaultValue: new Guid("00000000-0000-0000-0000-000000000000"),
                oldClrType: typeof(Guid),
                oldType: "uuid",
                oldNullable: true);
        }
    }
}
